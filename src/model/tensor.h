// A row-major float32 tensor. On the CPU it owns its values in `data`; a device backend keeps them
// in device memory instead (`device_data`), and only that backend reads them. Weights leave the
// loader as host tensors; a backend moves them where it computes (Ops::to_device).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace dsserve::model {

enum class Device : std::uint8_t { cpu, cuda };

// How a device tensor holds its values. Host tensors hold float32 values; a host cache table
// tagged bf16 holds only values a bfloat16 can represent (the CPU rounds at every write, so that it
// computes what a device with a BF16 cache does). fp8_block: e4m3 values with one float32 scale
// per 128x128 block (`scale_data`, [ceil(rows / 128), ceil(cols / 128)]), the format of
// DeepSeek's released linear weights. fp8_row: e4m3 values with one float32 scale per row
// (`scale_data`, [rows]), the lightning indexer's key cache (model/index_fp8.h); a host table
// tagged fp8_row holds only values e4m3 x its row's scale.
enum class Storage : std::uint8_t { f32, bf16, fp8_block, fp8_row };

struct Tensor {
    std::vector<std::int64_t> shape;
    std::vector<float> data;  // the values, for Device::cpu
    Device device = Device::cpu;
    // The values, for a device tensor. Copies of a device tensor share this memory.
    std::shared_ptr<void> device_data;
    Storage storage = Storage::f32;
    std::shared_ptr<void> scale_data;  // fp8_block / fp8_row scales, on the device

    Tensor() = default;
    explicit Tensor(std::vector<std::int64_t> s) : shape(std::move(s)), data(count(shape), 0.0f) {}
    Tensor(std::int64_t rows, std::int64_t cols) : Tensor(std::vector<std::int64_t>{rows, cols}) {}

    std::int64_t numel() const {
        return shape.empty() ? 0 : static_cast<std::int64_t>(count(shape));
    }
    std::int64_t rows() const { return shape.empty() ? 0 : shape[0]; }
    // Elements per row: the product of the dims after the first.
    std::int64_t cols() const {
        std::int64_t n = shape.empty() ? 0 : 1;
        for (std::size_t i = 1; i < shape.size(); ++i) {
            n *= shape[i];
        }
        return n;
    }
    bool on_host() const { return device == Device::cpu; }
    float* row(std::int64_t r) { return data.data() + r * cols(); }
    const float* row(std::int64_t r) const { return data.data() + r * cols(); }
    float* device_ptr() const { return static_cast<float*>(device_data.get()); }

    static std::size_t count(const std::vector<std::int64_t>& s) {
        std::size_t n = 1;
        for (auto d : s) {
            n *= static_cast<std::size_t>(d);
        }
        return n;
    }
};

}  // namespace dsserve::model
