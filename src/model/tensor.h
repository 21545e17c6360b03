// A host tensor of float32, row-major. The CPU backend computes on these directly; they are also
// the format in which weights leave the loader before a backend takes them.
#pragma once

#include <cstdint>
#include <vector>

namespace dsserve::model {

struct Tensor {
    std::vector<std::int64_t> shape;
    std::vector<float> data;

    Tensor() = default;
    explicit Tensor(std::vector<std::int64_t> s) : shape(std::move(s)), data(count(shape), 0.0f) {}
    Tensor(std::int64_t rows, std::int64_t cols) : Tensor(std::vector<std::int64_t>{rows, cols}) {}

    std::int64_t numel() const { return static_cast<std::int64_t>(data.size()); }
    std::int64_t rows() const { return shape.empty() ? 0 : shape[0]; }
    std::int64_t cols() const { return shape.empty() ? 0 : numel() / shape[0]; }
    float* row(std::int64_t r) { return data.data() + r * cols(); }
    const float* row(std::int64_t r) const { return data.data() + r * cols(); }

    static std::size_t count(const std::vector<std::int64_t>& s) {
        std::size_t n = 1;
        for (auto d : s) {
            n *= static_cast<std::size_t>(d);
        }
        return n;
    }
};

}  // namespace dsserve::model
