// Matrix products with few activation rows (decode): y = x W^T read at memory speed. A decode
// step multiplies one or a few token rows by every weight once, so its time is the weight bytes
// over bandwidth; tensor-core GEMMs are built for reuse that these shapes do not have, and
// cuBLASLt's FP8 path also wants the rows padded to 4 and quantized first.
//
// Weights stay in their storage (block FP8 with 128x128 scales, BF16, or float32) and are
// widened in registers; activations stay float32, so a block-FP8 product here is the exact
// product of the dequantized weight, as the CPU backend computes it.
//
// One launch can cover several weights that share the input (q_a, kv_a and the indexer's wk all
// read the same normed hidden state), and the MoE form runs every active expert of a step in one
// launch, its expert list read on the device so that the host never waits for the router.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace dsserve::backend::cuda {

enum class WeightFormat : std::uint8_t { f32, bf16, fp8_block };

// Bytes per weight value (block-FP8 scales aside).
__host__ __device__ constexpr int weight_bytes(WeightFormat f) {
    return f == WeightFormat::fp8_block ? 1 : f == WeightFormat::bf16 ? 2 : 4;
}

// The activations: rows of k floats, row r at x + row(r) * ldx. swiglu: a row is [gate | up],
// each k wide, and the input value is silu(gate) * up.
struct GemvInput {
    const float* x = nullptr;
    int ldx = 0;
    int k = 0;
    bool swiglu = false;
};

constexpr int kGemvMaxSegments = 4;

// One weight [n, k] and where its n output columns go: y[r * ldy + j] for output row r.
struct GemvSegment {
    const void* w = nullptr;
    const float* scale = nullptr;  // fp8_block: [ceil(n / 128)][scale_ld]
    int scale_ld = 0;
    int n = 0;
    float* y = nullptr;
    int ldy = 0;
};

struct GemvPlain {
    int m = 0;  // output row r reads input row r
};

// MoE form. Active expert slot i (i < *count) is expert expert[i] over output rows
// [start[i], start[i + 1]); output row j reads input row x_row[j]. Segment s of expert e is
// weight table[e * segments + s] with scales scales[e * segments + s]; every expert's segment s
// has the n and ldy of `segment[s]` (whose own w and scale are unused).
struct GemvGrouped {
    const std::int32_t* count = nullptr;
    const std::int32_t* expert = nullptr;
    const std::int32_t* start = nullptr;
    const std::int32_t* x_row = nullptr;
    const void* const* table = nullptr;
    const float* const* scales = nullptr;
    int max_slots = 0;      // grid bound: slots beyond *count do nothing
    int rows_per_slot = 1;  // a hint (mean rows an expert gets) that picks the kernel's row tile
};

// True when the GEMV kernels take this reduction width in this format (rows must be 16-byte
// aligned).
bool gemv_supports(WeightFormat format, int k);

void launch_gemv(WeightFormat format, const GemvInput& in, const GemvSegment* segments,
                 int num_segments, const GemvPlain& plain, cudaStream_t stream);
void launch_gemv_grouped(WeightFormat format, const GemvInput& in, const GemvSegment* segments,
                         int num_segments, const GemvGrouped& grouped, cudaStream_t stream);

}  // namespace dsserve::backend::cuda
