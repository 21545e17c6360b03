// One RoPE rotation, shared by every kernel that rotates query rows (the rope kernel, the FP8
// GEMV's rotating epilogue), so that a rotation applied as a product's results leave it equals
// the product followed by the rope kernel bit for bit. Each product and sum rounds on its own
// (the intrinsics are never contracted into FMAs), as the CPU backend computes it.
#pragma once

#include <cstdint>

namespace dsserve::backend::cuda {

// (x0, x1) rotated by position x inv_freq and scaled by attention_factor (YaRN's mscale).
__device__ __forceinline__ void rope_rotate(float& x0, float& x1, std::int32_t position,
                                            float inv_freq, float attention_factor) {
    const float angle = static_cast<float>(position) * inv_freq;
    const float c = cosf(angle) * attention_factor, s = sinf(angle) * attention_factor;
    const float a = x0, b = x1;
    x0 = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
    x1 = __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
}

}  // namespace dsserve::backend::cuda
