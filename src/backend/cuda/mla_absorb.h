// MLA's absorbed products with kv_b_proj in its storage (block FP8, BF16 or float32), for a few
// token rows (decode). kv_b is [heads * (nope + v), lora]: head h's W_UK_h is rows
// h (nope + v) .. + nope, its W_UV_h the v rows after. Absorbing multiplies every weight value by
// every token row once, so at decode the time is the weight bytes over bandwidth, and block FP8
// reads a quarter of float32's. Weights are widened in registers to the float value of the
// dequantized weight (e4m3 value x block scale, rounded once, as the CPU backend holds it) and
// read from memory once per launch whatever the token count; activations stay float32.
//
// Each launch does tokens x weights multiply-adds in float32, so beyond a few tokens the time is
// the arithmetic's, not the bytes' (at 16 tokens about 4 us per product on an H200 at peak FMA
// rate, against 2 us for the bytes). For many rows (prefill) a blocked GEMM does the same
// arithmetic better: CudaOps dequantizes the weight and uses cuBLAS there.
#pragma once

#include <cuda_runtime_api.h>

#include "backend/cuda/gemv.h"

namespace dsserve::backend::cuda {

struct AbsorbWeight {
    WeightFormat format = WeightFormat::f32;
    const void* w = nullptr;       // rows of lora values (fp8_block: row count padded to 128)
    const float* scale = nullptr;  // fp8_block: [rows / 128][scale_ld], weight_scale_stride(lora)
    int scale_ld = 0;
};

struct AbsorbShape {
    int tokens = 0, heads = 0, nope = 0, rope = 0, v = 0, lora = 0;
};

// True when the absorb kernels take this shape in this format: nope <= 128, lora <= 512 and a
// multiple of 16 (of 128 for block FP8: one scale column per 128-column slice), any v and tokens.
bool absorb_supports(WeightFormat format, const AbsorbShape& shape);

// q_lat[t, h * lora + j] = sum_{d < nope} q[t, h * (nope + rope) + d] W[h * (nope + v) + d][j].
void launch_absorb_q(const AbsorbWeight& w, const AbsorbShape& shape, const float* q, float* q_lat,
                     cudaStream_t stream);
// out[t, h * v + d] = sum_{j < lora} o_lat[t, h * lora + j] W[h * (nope + v) + nope + d][j].
void launch_absorb_out(const AbsorbWeight& w, const AbsorbShape& shape, const float* o_lat,
                       float* out, cudaStream_t stream);

}  // namespace dsserve::backend::cuda
