// Activation rows to block FP8 (e4m3, one float32 scale per 128 values), as DeepSeek-V3 feeds its
// FP8 linears: scale = amax / 448 over the group (1 for an all-zero group), each value x / scale
// rounded to nearest e4m3. One warp covers a group, four consecutive values a lane, so every
// kernel that holds a row that way (the quantizer, the norms that feed FP8 products) writes the
// same bytes.
#pragma once

#include <cuda_fp8.h>

#include <cstdint>

namespace dsserve::backend::cuda {

constexpr int kFp8Group = 128;
constexpr float kFp8Max = 448.0f;

// Lane l of a full warp holds values 4l .. 4l + 3 of one group; writes them at group_out + 4l and
// the group's scale at *scale_out (lane 0).
__device__ __forceinline__ void quantize_group_warp(float4 v, unsigned char* group_out,
                                                    float* scale_out) {
    const int lane = threadIdx.x % 32;
    float amax = fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w)));
    for (int o = 16; o > 0; o /= 2) {
        amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    }
    const float s = amax > 0.0f ? amax / kFp8Max : 1.0f;
    const __nv_fp8x4_e4m3 q(make_float4(v.x / s, v.y / s, v.z / s, v.w / s));
    *reinterpret_cast<__nv_fp8x4_storage_t*>(group_out + 4 * lane) = q.__x;
    if (lane == 0) {
        *scale_out = s;
    }
}

// SiLU(gate) * up as the products that take [gate | up] rows compute it (__expf, within an ulp
// or two of expf).
__device__ __forceinline__ float swiglu_value(float gate, float up) {
    return gate / (1.0f + __expf(-gate)) * up;
}

}  // namespace dsserve::backend::cuda
