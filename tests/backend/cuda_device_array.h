// A device array for the CUDA kernel tests: allocated by size or copied from a host vector,
// freed on scope exit.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <vector>

#include "backend/cuda/cuda_check.h"

namespace dsserve::backend::cuda {

template <typename T>
class DeviceArray {
public:
    explicit DeviceArray(std::size_t n) : n_(n) {
        check_cuda(cudaMalloc(&ptr_, std::max<std::size_t>(n, 1) * sizeof(T)), "cudaMalloc");
    }
    explicit DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) {
        check_cuda(cudaMemcpy(ptr_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice),
                   "cudaMemcpy to device");
    }
    DeviceArray(const DeviceArray&) = delete;
    DeviceArray& operator=(const DeviceArray&) = delete;
    ~DeviceArray() { cudaFree(ptr_); }

    T* get() const { return static_cast<T*>(ptr_); }
    // NaN bytes everywhere, so that an output the kernel forgets to write cannot pass.
    void poison() { check_cuda(cudaMemset(ptr_, 0xff, n_ * sizeof(T)), "cudaMemset"); }
    // Waits for the device (kernels may run on any stream), then copies back.
    std::vector<T> to_host() const {
        check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
        std::vector<T> host(n_);
        check_cuda(cudaMemcpy(host.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost),
                   "cudaMemcpy to host");
        return host;
    }

private:
    void* ptr_ = nullptr;
    std::size_t n_;
};

}  // namespace dsserve::backend::cuda
