// Every kernel of the backend is launched as a programmatic dependent of the one before it
// (Hopper's PDL): it may be scheduled while its predecessor still runs, and waits for it with
// griddepcontrol.wait before touching anything the predecessor wrote. A decode step is some
// 200 kernels, most of them a few microseconds long, so the launch latency and ramp-up that PDL
// hides between each pair is a tenth of the step; the GEMVs also start streaming their weights,
// which no kernel writes, before they wait.
//
// The rule that keeps this correct: a kernel launched by launch_kernel calls pdl_enter() (or
// pdl_wait() before its first read of, or write to, memory another kernel touches) on every path.
// Waiting is transitive: a kernel's wait returns once its predecessor has completed, and the
// predecessor could not complete before its own wait returned. DSSERVE_CUDA_PDL=0 launches
// every kernel plainly instead (the griddepcontrol instructions then do nothing), to rule PDL
// out when chasing a fault, or to measure what it brings.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

namespace dsserve::backend::cuda {

// Lets the next kernel in the stream be scheduled now (it still waits for this one to finish).
__device__ __forceinline__ void pdl_allow_next() {
    asm volatile("griddepcontrol.launch_dependents;");
}

// Waits until the kernel before this one has completed and its writes are visible.
__device__ __forceinline__ void pdl_wait() {
    asm volatile("griddepcontrol.wait;" ::: "memory");
}

// The first statement of a kernel that reads its inputs right away.
__device__ __forceinline__ void pdl_enter() {
    pdl_allow_next();
    pdl_wait();
}

// The start and the end of a kernel that takes a PdlRole (kernels.h); the end on every path.
__device__ __forceinline__ void pdl_begin(PdlRole role) {
    switch (role) {
        case PdlRole::chained:
            pdl_enter();
            break;
        case PdlRole::group_first:
            pdl_wait();
            pdl_allow_next();
            break;
        case PdlRole::group_member:
            pdl_allow_next();
            break;
    }
}
__device__ __forceinline__ void pdl_end(PdlRole role) {
    if (role == PdlRole::group_member) {
        pdl_wait();
    }
}

// True when every pointer is 16-byte aligned: launchers ask it before picking a kernel that
// moves 16 bytes at a time, and kernels before taking such a path.
template <typename... T>
__host__ __device__ inline bool aligned16(const T*... p) {
    return ((reinterpret_cast<std::uintptr_t>(p) % 16 == 0) && ...);
}

inline bool pdl_enabled() {
    static const bool on = [] {
        const char* v = std::getenv("DSSERVE_CUDA_PDL");
        return v == nullptr || std::strcmp(v, "0") != 0;
    }();
    return on;
}

// kernel<<<grid, block, smem, stream>>>(args...), as a programmatic dependent. The launch is
// checked by the caller (DS_CUDA_LAUNCH), as for <<<>>>.
template <typename... Params, typename... Args>
void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t smem,
                   cudaStream_t stream, Args&&... args) {
    cudaLaunchConfig_t config{};
    config.gridDim = grid;
    config.blockDim = block;
    config.dynamicSmemBytes = smem;
    config.stream = stream;
    cudaLaunchAttribute pdl{};
    pdl.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    pdl.val.programmaticStreamSerializationAllowed = 1;
    config.attrs = &pdl;
    config.numAttrs = pdl_enabled() ? 1 : 0;
    // A failed launch is reported by the caller's DS_CUDA_LAUNCH (cudaGetLastError), as for <<<>>>.
    (void)cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

}  // namespace dsserve::backend::cuda
