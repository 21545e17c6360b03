// The tensor-core and async-copy instructions the FP8 kernels share (gemv_fp8.cu, moe_gemm.cu).
#pragma once

#include <cuda_runtime.h>

namespace dsserve::backend::cuda {

// d += a b for one m16n8k32 tile, e4m3 in and float32 out: a is 16 x 32 bytes (row-major),
// b is 32 x 8 (column-major, i.e. rows of k); the PTX manual gives each lane's fragment.
__device__ __forceinline__ void mma_e4m3(float d[4], unsigned a0, unsigned a1, unsigned a2,
                                         unsigned a3, unsigned b0, unsigned b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void copy_async16(unsigned dst, const void* src) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(dst), "l"(src));
}
__device__ __forceinline__ void commit_async() {
    asm volatile("cp.async.commit_group;");
}
template <int N>
__device__ __forceinline__ void wait_async() {
    asm volatile("cp.async.wait_group %0;" ::"n"(N));
}

}  // namespace dsserve::backend::cuda
