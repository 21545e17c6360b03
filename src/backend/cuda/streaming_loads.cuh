// Loads for weights a launch reads once: through the read-only path, allocating nothing in L1,
// so that the activations every warp shares keep the cache.
#pragma once

#include <cuda_runtime.h>

namespace dsserve::backend::cuda {

__device__ __forceinline__ uint2 load_streaming_u64(const void* p) {
    uint2 v;
    asm("ld.global.nc.L1::no_allocate.v2.u32 {%0, %1}, [%2];" : "=r"(v.x), "=r"(v.y) : "l"(p));
    return v;
}

__device__ __forceinline__ uint4 load_streaming(const void* p) {
    uint4 v;
    asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
        : "l"(p));
    return v;
}

}  // namespace dsserve::backend::cuda
