// Block-FP8 products with few rows on tensor cores (see gemv.h, launch_gemv_fp8).
//
// A warp multiplies a 16-column weight tile by up to 8 token rows with mma.m16n8k32 (e4m3 in,
// float32 out): the weight tile is the A operand, the quantized activations the B operand. A
// dot product does not depend on the order of its k terms, so each lane takes 16 contiguous
// bytes of a weight row and the same 16 bytes' positions of its token's activation row, and
// both operands are fed in that one (permuted) order. Weights reach shared memory by cp.async in
// whole 128-byte lines, a few scale blocks ahead of the tensor cores.
// Partial sums leave the tensor core every 128 k (one scale block), where the weight's and the
// activation's scales apply in float32, as DeepSeek-V3's FP8 GEMMs promote every 128 k.
//
// Each tile (16 columns, with its row group) is split between `splits` warps, warp j of the tile
// taking scale blocks j, j + splits, j + 2 splits, ...: all warps walk the weight rows at about
// the same k at once. Measured on the H200, this order reads HBM at 77-91% of its copy
// bandwidth where giving each warp a contiguous k range (stream-K) reached 59-73% (products of 100
// MB and more): the access order, not the bytes in flight, was what held single-row products back.
// A split tile is finished by the last warp to arrive, which adds the parts in warp order: results
// do not depend on timing.
#include <cuda_fp8.h>

#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/fp8_quant.cuh"
#include "backend/cuda/gemv.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/mma.cuh"
#include "backend/cuda/rope.cuh"

namespace dsserve::backend::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 4;
constexpr int kTileCols = 16;  // mma M
constexpr int kTileRows = 8;   // mma N: token rows per pass
constexpr int kBlockK = 128;   // a scale block

struct Fp8GemvArgs {
    const unsigned char* x8;  // [rows][k] e4m3
    const float* xs;          // [rows][k / 128]
    int k;
    int kblocks;
    GemvSegment seg[kGemvMaxSegments];
    int tile_start[kGemvMaxSegments + 1];  // in 16-column tiles
    int num_segments;
    int m;  // plain form: rows
    GemvGrouped grouped;
    bool is_grouped;
    float* partials;         // [warps][32][4]
    std::int32_t* counters;  // [row groups x tiles], zero between launches
    GemvRope rope;
};

// The rows a row group covers, in the plain or the grouped (MoE) form. Row groups are the
// 8-row passes: a grouped slot with r rows has ceil(r / 8) of them.
struct RowGroup {
    int slot = 0;
    int expert = 0;
    int first = 0;  // output row of token 0
    int rows = 0;   // <= 8
};

__device__ int slot_rows(const Fp8GemvArgs& a, int slot) {
    return a.grouped.start[slot + 1] - a.grouped.start[slot];
}

// Total row groups (every lane gets the same answer).
__device__ int count_row_groups(const Fp8GemvArgs& a) {
    if (!a.is_grouped) {
        return (a.m + kTileRows - 1) / kTileRows;
    }
    const int slots = *a.grouped.count;
    int total = 0;
    for (int s = threadIdx.x % kWarp; s < slots; s += kWarp) {
        total += (slot_rows(a, s) + kTileRows - 1) / kTileRows;
    }
    for (int o = kWarp / 2; o > 0; o /= 2) {
        total += __shfl_xor_sync(0xffffffffu, total, o);
    }
    return total;
}

__device__ RowGroup row_group(const Fp8GemvArgs& a, int p) {
    RowGroup g;
    if (!a.is_grouped) {
        g.first = p * kTileRows;
        g.rows = min(kTileRows, a.m - g.first);
        return g;
    }
    // The slot holding row group p: a short walk, the same in every lane.
    int before = 0, slot = 0;
    for (;; ++slot) {
        const int n = (slot_rows(a, slot) + kTileRows - 1) / kTileRows;
        if (p < before + n) {
            break;
        }
        before += n;
    }
    g.slot = slot;
    g.expert = a.grouped.expert[slot];
    g.first = a.grouped.start[slot] + (p - before) * kTileRows;
    g.rows = min(kTileRows, a.grouped.start[slot + 1] - g.first);
    return g;
}

struct Tile {
    const unsigned char* w;  // column col0's row
    const float* scale;      // the scale row of col0's 128-column block
    float* y;                // output column col0
    int ldy;
    int cols;  // valid columns, <= 16
    int col0;  // within its segment
};

__device__ Tile tile_of(const Fp8GemvArgs& a, const RowGroup& g, int tile) {
    int s = 0;
    while (s + 1 < a.num_segments && tile >= a.tile_start[s + 1]) {
        ++s;
    }
    const GemvSegment& seg = a.seg[s];
    const int col0 = (tile - a.tile_start[s]) * kTileCols;
    const void* w = seg.w;
    const float* scale = seg.scale;
    if (a.is_grouped) {
        w = a.grouped.table[g.expert * a.num_segments + s];
        scale = a.grouped.scales[g.expert * a.num_segments + s];
    }
    Tile t;
    t.w = static_cast<const unsigned char*>(w) + static_cast<std::int64_t>(col0) * a.k;
    t.scale = scale + (col0 / 128) * seg.scale_ld;
    t.y = seg.y + col0;
    t.ldy = seg.ldy;
    t.cols = min(kTileCols, seg.n - col0);
    t.col0 = col0;
    return t;
}

__device__ int x_row(const Fp8GemvArgs& a, int out_row) {
    return a.is_grouped && a.grouped.x_row != nullptr ? a.grouped.x_row[out_row] : out_row;
}

// A warp's weight tile for one scale block (16 rows x 128 bytes) in shared memory: the 16-byte
// chunks of odd rows swap halves, so that the fragment reads below (two rows of four chunks per
// eight lanes) hit all 32 banks once.
constexpr int kStageBytes = kTileCols * kBlockK;
constexpr int kStages = 4;  // scale blocks a warp keeps in flight

__device__ __forceinline__ int swizzled(int row, int chunk) {
    return row * kBlockK + ((chunk ^ ((row & 1) << 2)) * 16);
}

// What a warp needs of its tile (with its row group): where the results go, the weight scales,
// and this lane's activation pointers.
struct Piece {
    const float* scale;  // the tile's weight scales
    float* y;            // the tile's first output column, in the row group's first row
    int ldy;
    int cols;
    int rows;
    int first_row;            // the row group's first output row
    int col0;                 // the tile's first column within its segment
    const unsigned char* xp;  // this lane's token row, at its 16-byte offset
    const float* xs0;         // the scales of the two tokens this lane's accumulators hold
    const float* xs1;
};

__device__ Piece piece_of(const Fp8GemvArgs& a, int piece, int tiles) {
    const int lane = threadIdx.x % kWarp;
    const int gi = lane / 4, c = lane % 4;
    const RowGroup g = row_group(a, piece / tiles);
    const Tile t = tile_of(a, g, piece % tiles);
    Piece p;
    p.scale = t.scale;
    p.y = t.y + static_cast<std::int64_t>(g.first) * t.ldy;
    p.ldy = t.ldy;
    p.cols = t.cols;
    p.rows = g.rows;
    p.first_row = g.first;
    p.col0 = t.col0;
    p.xp = gi < g.rows ? a.x8 + static_cast<std::int64_t>(x_row(a, g.first + gi)) * a.k + 16 * c
                       : nullptr;
    const int t0 = 2 * c, t1 = 2 * c + 1;
    p.xs0 = t0 < g.rows ? a.xs + static_cast<std::int64_t>(x_row(a, g.first + t0)) * a.kblocks
                        : nullptr;
    p.xs1 = t1 < g.rows ? a.xs + static_cast<std::int64_t>(x_row(a, g.first + t1)) * a.kblocks
                        : nullptr;
    return p;
}

// The rotation of a GemvRope, applied to a tile's final sums (the whole warp): a column's pair
// partner (its column ^ 1: pairs start at even columns, and tiles never split them) is held by
// lane ^ 4, in the same accumulator.
__device__ void rotate_tile(const Piece& p, const GemvRope& rope, float acc[4]) {
    const int lane = threadIdx.x % kWarp;
    const int gi = lane / 4, c = lane % 4;
    float partner[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        partner[i] = __shfl_xor_sync(0xffffffffu, acc[i], 4);
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int col = gi + (i >= 2 ? 8 : 0), tok = 2 * c + (i & 1);
        const int d = (p.col0 + col) % rope.head_stride - rope.offset;
        if (col < p.cols && tok < p.rows && d >= 0 && d < rope.rope_dim) {
            const bool first = d % 2 == 0;
            float x0 = first ? acc[i] : partner[i], x1 = first ? partner[i] : acc[i];
            rope_rotate(x0, x1, rope.positions[p.first_row + tok], rope.inv_freq[d / 2],
                        rope.attention_factor);
            acc[i] = first ? x0 : x1;
        }
    }
}

__device__ void store_tile(const Piece& p, const float acc[4]) {
    const int lane = threadIdx.x % kWarp;
    const int gi = lane / 4, c = lane % 4;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int col = gi + (i >= 2 ? 8 : 0), tok = 2 * c + (i & 1);
        if (col < p.cols && tok < p.rows) {
            p.y[static_cast<std::int64_t>(tok) * p.ldy + col] = acc[i];
        }
    }
}

// A scale block's activations (this lane's 32 bytes of its token row) and the two scale
// products its accumulators take, loaded before the block's weights are waited for.
struct BlockOperands {
    uint4 xv[2];
    float s0, s1;
};

__device__ __forceinline__ BlockOperands load_operands(const Piece& p, int kb) {
    BlockOperands o;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        o.xv[h] = p.xp != nullptr ? *reinterpret_cast<const uint4*>(
                                        p.xp + static_cast<std::int64_t>(kb) * kBlockK + 64 * h)
                                  : make_uint4(0, 0, 0, 0);
    }
    const float ws = __ldg(p.scale + kb);
    o.s0 = p.xs0 != nullptr ? ws * p.xs0[kb] : 0.0f;
    o.s1 = p.xs1 != nullptr ? ws * p.xs1[kb] : 0.0f;
    return o;
}

// acc += one scale block: the 16 x 128 weight bytes of `tile` (a ring stage) times the
// activations, promoted to float32 with both scales.
__device__ __forceinline__ void multiply_block(const unsigned char* tile, const BlockOperands& o,
                                               float acc[4]) {
    const int lane = threadIdx.x % kWarp;
    const int gi = lane / 4, c = lane % 4;
    float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const uint4 wl = *reinterpret_cast<const uint4*>(tile + swizzled(gi, 4 * h + c));
        const uint4 wh = *reinterpret_cast<const uint4*>(tile + swizzled(gi + 8, 4 * h + c));
        mma_e4m3(d, wl.x, wh.x, wl.y, wh.y, o.xv[h].x, o.xv[h].y);
        mma_e4m3(d, wl.z, wh.z, wl.w, wh.w, o.xv[h].z, o.xv[h].w);
    }
    acc[0] = fmaf(d[0], o.s0, acc[0]);
    acc[1] = fmaf(d[1], o.s1, acc[1]);
    acc[2] = fmaf(d[2], o.s0, acc[2]);
    acc[3] = fmaf(d[3], o.s1, acc[3]);
}

// Copies one scale block of a tile (16 rows from w, 128 bytes at block kb) into a ring stage.
__device__ __forceinline__ void load_block(unsigned stage_addr, const unsigned char* w, int k,
                                           int kb) {
    const int lane = threadIdx.x % kWarp;
#pragma unroll
    for (int r = 0; r < kTileCols / 4; ++r) {
        const int row = 4 * r + lane / 8, chunk = lane % 8;
        copy_async16(stage_addr + swizzled(row, chunk),
                     w + static_cast<std::int64_t>(row) * k +
                         static_cast<std::int64_t>(kb) * kBlockK + 16 * chunk);
    }
}

// Adds the parts of a tile in warp order: parts[w] for w in [first, last], at this lane.
__device__ void sum_parts(const float4* parts, int first, int last, float sum[4]) {
    const int lane = threadIdx.x % kWarp;
    // The parts' loads in flight together, then added in order.
    constexpr int kBatch = 4;
    for (int w0 = first; w0 <= last; w0 += kBatch) {
        float4 v[kBatch];
#pragma unroll
        for (int i = 0; i < kBatch; ++i) {
            const int w = w0 + i;
            v[i] =
                w <= last ? __ldcg(parts + w * kWarp + lane) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
#pragma unroll
        for (int i = 0; i < kBatch; ++i) {
            sum[0] += v[i].x;
            sum[1] += v[i].y;
            sum[2] += v[i].z;
            sum[3] += v[i].w;
        }
    }
}

// Warp (piece x splits + j) takes scale blocks j, j + splits, ... of piece (row group x tiles +
// tile). Its weights stream through a kStages-deep cp.async ring in shared memory (the warp's
// own). acc[0..3]: (column lane / 4, token 2 (lane % 4)), (same column, next token), then the
// same two for column lane / 4 + 8: the mma accumulator layout.
__global__ void __launch_bounds__(kWarpsPerBlock* kWarp, 6)
    gemv_fp8_kernel(Fp8GemvArgs a, int splits) {
    __shared__ __align__(16) unsigned char rings[kWarpsPerBlock][kStages * kStageBytes];
    // The grouped form's expert list comes from the kernels before, unless it is known complete
    // (GemvGrouped::tables_settled); otherwise the first weight loads start before waiting, as no
    // kernel writes weights.
    const bool wait_first = a.is_grouped && !a.grouped.tables_settled;
    if (wait_first) {
        pdl_wait();
    }
    pdl_allow_next();
    const int lane = threadIdx.x % kWarp;
    const int warp = static_cast<int>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
    const int tiles = a.tile_start[a.num_segments];
    const int kbs = a.kblocks;
    const int piece = warp / splits, j = warp % splits;
    const int pieces = count_row_groups(a) * tiles;
    if (piece >= pieces) {
        pdl_wait();  // (a no-op when already waited) so that no warp ends before its predecessor
        return;
    }
    const unsigned char* w = tile_of(a, row_group(a, piece / tiles), piece % tiles).w;
    const int n = (kbs - j + splits - 1) / splits;
    unsigned char* ring = rings[threadIdx.x / kWarp];
    const unsigned ring_addr = static_cast<unsigned>(__cvta_generic_to_shared(ring));
    auto issue = [&](int i, int stage) {
        if (i < n) {
            load_block(ring_addr + stage * kStageBytes, w, a.k, j + i * splits);
        }
        commit_async();
    };
#pragma unroll
    for (int s = 0; s < kStages - 1; ++s) {
        issue(s, s);
    }
    if (!wait_first) {
        pdl_wait();
    }
    const Piece p = piece_of(a, piece, tiles);
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int i = 0; i < n; ++i) {
        issue(i + kStages - 1, (i + kStages - 1) % kStages);
        const BlockOperands ops = load_operands(p, j + i * splits);
        wait_async<kStages - 1>();
        __syncwarp();
        multiply_block(ring + (i % kStages) * kStageBytes, ops, acc);
        __syncwarp();
    }
    wait_async<0>();
    if (splits == 1) {
        if (a.rope.positions != nullptr) {
            rotate_tile(p, a.rope, acc);
        }
        store_tile(p, acc);
        return;
    }
    auto* parts = reinterpret_cast<float4*>(a.partials);
    parts[warp * kWarp + lane] = make_float4(acc[0], acc[1], acc[2], acc[3]);
    __threadfence();
    __syncwarp();
    int arrived = 0;
    if (lane == 0) {
        arrived = atomicAdd(a.counters + piece, 1);
    }
    arrived = __shfl_sync(0xffffffffu, arrived, 0);
    if (arrived != splits - 1) {
        return;
    }
    __threadfence();
    float sum[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    sum_parts(parts, piece * splits, piece * splits + splits - 1, sum);
    if (a.rope.positions != nullptr) {
        rotate_tile(p, a.rope, sum);
    }
    store_tile(p, sum);
    if (lane == 0) {
        a.counters[piece] = 0;  // ready for the next launch
    }
}

// One warp per (row, 128-value group): fp8_quant.cuh's rounding.
__global__ void quantize_rows_kernel(GemvInput in, std::int64_t rows, unsigned char* x8,
                                     float* xs) {
    pdl_enter();
    const int lane = threadIdx.x % kWarp;
    const std::int64_t item =
        (static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
    const int groups = in.k / kBlockK;
    if (item >= rows * groups) {
        return;
    }
    const std::int64_t row = item / groups;
    const int g = static_cast<int>(item % groups);
    const float* src = in.x + row * in.ldx + g * kBlockK + 4 * lane;
    float4 v = *reinterpret_cast<const float4*>(src);
    if (in.swiglu) {
        const float4 up = *reinterpret_cast<const float4*>(src + in.k);
        v = make_float4(swiglu_value(v.x, up.x), swiglu_value(v.y, up.y), swiglu_value(v.z, up.z),
                        swiglu_value(v.w, up.w));
    }
    quantize_group_warp(v, x8 + row * in.k + g * kBlockK, xs + row * groups + g);
}

}  // namespace

std::size_t gemv_fp8_counter_words(int tiles, int row_groups) {
    return static_cast<std::size_t>(tiles) * row_groups;
}

bool gemv_rope_supports(int head_stride, int offset, int rope_dim) {
    return head_stride > 0 && head_stride % 2 == 0 && offset >= 0 && offset % 2 == 0 &&
           rope_dim % 2 == 0 && offset + rope_dim <= head_stride;
}

int gemv_fp8_tiles(const GemvSegment* segments, int num_segments) {
    int tiles = 0;
    for (int s = 0; s < num_segments; ++s) {
        tiles += (segments[s].n + kTileCols - 1) / kTileCols;
    }
    return tiles;
}

void launch_gemv_fp8(const GemvInput& in, std::int64_t input_rows, const GemvSegment* segments,
                     int num_segments, int m, const GemvGrouped* grouped, int max_row_groups,
                     const GemvFp8Workspace& ws, cudaStream_t stream, const GemvRope& rope) {
    DS_ASSERT(num_segments >= 1 && num_segments <= kGemvMaxSegments, num_segments);
    DS_ASSERT(rope.positions == nullptr ||
                  (grouped == nullptr && num_segments == 1 && rope.inv_freq != nullptr &&
                   gemv_rope_supports(rope.head_stride, rope.offset, rope.rope_dim)),
              "FP8 GEMV with RoPE: heads of ", rope.head_stride, ", offset ", rope.offset,
              ", rope ", rope.rope_dim);
    DS_ASSERT(in.k % kBlockK == 0 && in.ldx % 4 == 0, "FP8 GEMV width ", in.k, " ld ", in.ldx);
    if (input_rows == 0 || max_row_groups == 0) {
        return;
    }
    Fp8GemvArgs a{};
    a.k = in.k;
    a.kblocks = in.k / kBlockK;
    a.num_segments = num_segments;
    a.tile_start[0] = 0;
    for (int s = 0; s < num_segments; ++s) {
        a.seg[s] = segments[s];
        a.tile_start[s + 1] = a.tile_start[s] + (segments[s].n + kTileCols - 1) / kTileCols;
    }
    const int tiles = a.tile_start[num_segments];
    DS_ASSERT(gemv_fp8_counter_words(tiles, max_row_groups) <= ws.counter_words,
              "FP8 GEMV counters: ", tiles, " tiles x ", max_row_groups, " row groups");
    a.m = m;
    if (grouped != nullptr) {
        a.grouped = *grouped;
        a.is_grouped = true;
        DS_ASSERT(!grouped->tables_settled || !ws.quantized,
                  "settled routing tables need this launch's quantizer before the product");
    }
    a.x8 = static_cast<const unsigned char*>(ws.x8);
    a.xs = ws.xs;
    a.partials = ws.partials;
    a.counters = ws.counters;
    a.rope = rope;

    if (!ws.quantized) {
        const std::int64_t items = input_rows * a.kblocks;
        constexpr int kQuantThreads = 256;
        launch_kernel(quantize_rows_kernel,
                      static_cast<unsigned>((items * kWarp + kQuantThreads - 1) / kQuantThreads),
                      kQuantThreads, 0, stream, in, input_rows, static_cast<unsigned char*>(ws.x8),
                      ws.xs);
        DS_CUDA_LAUNCH(quantize_rows, stream, input_rows, " x ", in.k);
    }

    // Splits: as many as fill the partial-sum warps (about one wave of the GPU), but at least
    // four scale blocks a warp; many tiles run unsplit, possibly in several waves. (Splitting
    // tiles a little more than one wave to run in whole waves of shorter warps measured slower:
    // nine MoE down projections, 4,032 tiles, 45 -> 50 us; each wave pays the warps' start.)
    constexpr int kMinBlocksPerWarp = 4;
    const std::int64_t pieces = static_cast<std::int64_t>(max_row_groups) * tiles;
    const int splits = static_cast<int>(std::clamp<std::int64_t>(
        std::min<std::int64_t>(ws.partial_warps / pieces, a.kblocks / kMinBlocksPerWarp), 1,
        a.kblocks));
    const std::int64_t warps = pieces * splits;
    DS_ASSERT(warps / kWarpsPerBlock < INT32_MAX, "FP8 GEMV: ", pieces, " tiles");
    static const bool carveout = [] {
        // Six blocks' rings (192 KiB) an SM: ask for the shared-memory carveout.
        check_cuda(
            cudaFuncSetAttribute(gemv_fp8_kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                 cudaSharedmemCarveoutMaxShared),
            "cudaFuncSetAttribute (gemv_fp8)");
        return true;
    }();
    (void)carveout;
    launch_kernel(gemv_fp8_kernel,
                  static_cast<unsigned>((warps + kWarpsPerBlock - 1) / kWarpsPerBlock),
                  kWarpsPerBlock * kWarp, 0, stream, a, splits);
    DS_CUDA_LAUNCH(gemv_fp8, stream, grouped != nullptr ? "grouped " : "", "[", m, ", ", in.k,
                   "] x ", tiles * kTileCols, " columns in ", num_segments, " weights, ",
                   max_row_groups, " row groups", rope.positions != nullptr ? ", RoPE" : "");
}

}  // namespace dsserve::backend::cuda
