// Matrix products with few activation rows (decode): y = x W^T read at memory speed. A decode
// step multiplies one or a few token rows by every weight once, so its time is the weight bytes
// over bandwidth; tensor-core GEMMs are built for reuse that these shapes do not have, and
// cuBLASLt's FP8 path also wants the rows padded to 4 and quantized first.
//
// launch_gemv / launch_gemv_grouped: weights stay in their storage (BF16 or float32; block FP8
// too, though CudaOps sends FP8 to launch_gemv_fp8 below, which is faster from one row on) and
// are widened in registers; activations stay float32, so a product here is the exact product of
// the stored weight, as the CPU backend computes it.
//
// One launch can cover several weights that share the input (q_a, kv_a and the indexer's wk all
// read the same normed hidden state), and the MoE form runs every active expert of a step in one
// launch, its expert list read on the device so that the host never waits for the router.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
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
    // The FP8 kernel may read the tables above before it waits for the kernel before it, and so
    // start streaming its experts' weights early, as the plain form does. Set only where that
    // kernel is this launch's own activation quantizer and the one before it waited for the
    // tables' writer before letting it launch (the gate/up product of the same routing).
    bool tables_settled = false;
};

// Block-FP8 weights with up to a few row groups of 8 rows: tensor cores (gemv_fp8.cu). The
// activation rows are quantized first to e4m3 with one scale per 128 values (amax / 448), as
// DeepSeek-V3 runs its FP8 linears and as the cuBLASLt path for larger products does; products
// are then exact in float32 within each 128-value block and summed in float32 across blocks.
// Scratch: x8 / xs hold the quantized rows ([input rows][k] bytes, [input rows][k / 128]
// floats); partials hold partial_warps warps' partial sums (512 bytes each; a product splits
// its tiles over at most partial_warps warps, so make it about one wave of the GPU); counters,
// counter_words of them, must be zero before the first launch and are left zero.
struct GemvFp8Workspace {
    void* x8 = nullptr;
    float* xs = nullptr;
    float* partials = nullptr;
    int partial_warps = 0;
    std::int32_t* counters = nullptr;
    std::size_t counter_words = 0;
    // x8 / xs already hold the input rows, quantized by the kernel that produced them (the
    // norms can, see kernels.h): no quantizer launch.
    bool quantized = false;
};

// A RoPE the FP8 GEMV applies to its results as they leave it (the queries' up-projection):
// in each head of head_stride columns, the interleaved pairs (offset + 2i, offset + 2i + 1) for
// i < rope_dim / 2, output row r at positions[r], as launch_rope rotates them after the product
// (rope.cuh: bit for bit). Plain form, one segment; offset and head_stride even.
struct GemvRope {
    const std::int32_t* positions = nullptr;  // none when null
    const float* inv_freq = nullptr;          // [rope_dim / 2]
    float attention_factor = 1.0f;
    int head_stride = 0, offset = 0, rope_dim = 0;
};
// True when the epilogue takes this head layout: pairs start at even columns within a head.
bool gemv_rope_supports(int head_stride, int offset, int rope_dim);

// 16-column tiles over all segments; counters needed: tiles x row groups.
int gemv_fp8_tiles(const GemvSegment* segments, int num_segments);
std::size_t gemv_fp8_counter_words(int tiles, int row_groups);
// Plain form: m rows (input_rows = m). Grouped form: grouped != null, input_rows = rows of x,
// max_row_groups a bound on the sum over active slots of ceil(rows / 8) (plain: ceil(m / 8)).
void launch_gemv_fp8(const GemvInput& in, std::int64_t input_rows, const GemvSegment* segments,
                     int num_segments, int m, const GemvGrouped* grouped, int max_row_groups,
                     const GemvFp8Workspace& workspace, cudaStream_t stream,
                     const GemvRope& rope = {});

// True when the GEMV kernels take this reduction width in this format (rows must be 16-byte
// aligned).
bool gemv_supports(WeightFormat format, int k);

void launch_gemv(WeightFormat format, const GemvInput& in, const GemvSegment* segments,
                 int num_segments, const GemvPlain& plain, cudaStream_t stream);
void launch_gemv_grouped(WeightFormat format, const GemvInput& in, const GemvSegment* segments,
                         int num_segments, const GemvGrouped& grouped, cudaStream_t stream);

}  // namespace dsserve::backend::cuda
