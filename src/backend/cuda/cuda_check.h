// CUDA errors stop the process: after a kernel fault the context is unusable, and carrying on
// would hand other requests garbage. The report names the kernel and its shape; an error found at
// a later synchronization names the last kernel launched, and DSSERVE_CUDA_SYNC=1 synchronizes
// after every launch so that the report is exact.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "core/error.h"

namespace dsserve::backend::cuda {

[[noreturn]] void cuda_fatal(cudaError_t error, const std::string& where);

// Records the launch (for later reports) and checks it.
void check_launch(const char* kernel, const std::string& shape, cudaStream_t stream);

// Checks a runtime call; `what` names it.
inline void check_cuda(cudaError_t error, const char* what) {
    if (error != cudaSuccess) {
        cuda_fatal(error, what);
    }
}

}  // namespace dsserve::backend::cuda

#define DS_CUDA_LAUNCH(kernel, stream, ...) \
    ::dsserve::backend::cuda::check_launch(#kernel, ::dsserve::str_cat(__VA_ARGS__), stream)
