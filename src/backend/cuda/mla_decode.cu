// Split-key absorbed MLA for decode (see mla_decode.h): in float32 on CUDA cores over a float32
// cache, and in bfloat16 on tensor cores over a BF16 one.
//
// With all heads sharing one latent row per key, the work per key is a small matrix product:
// scores [heads x keys] = Q [heads x 576] K^T, then O [heads x 512] += P V with V the first 512
// columns of K. One block takes kHeads heads of one token and a contiguous range (a split) of
// that token's keys, so each key row is read from memory once per kHeads heads; the splits give a
// batch of one token enough blocks to fill the GPU, and a second kernel merges them by
// log-sum-exp, as flash-decoding (and FlashMLA's combine step) do.
//
// In float32 on CUDA cores the per-key arithmetic (heads x 1088 FMAs) outweighs its 2304 bytes,
// so the layout aims at keeping shared-memory traffic below the FMA rate: per 4-column step a
// thread does 2 keys x 16 heads (scores) or 8 heads x 4 dims (output), with the shared operand
// broadcast across the warp.
#include <cuda_bf16.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/mla_decode.h"
#include "backend/cuda/mma.cuh"

namespace dsserve::backend::cuda {
namespace {

constexpr int kLora = 512, kRope = 64, kRow = kLora + kRope;
constexpr int kRow4 = kRow / 4;  // float4 columns of a key row
constexpr int kHeads = 16;       // heads per block
constexpr int kTile = 32;        // keys per shared-memory tile
constexpr int kThreads = 256;
constexpr int kWarpSize = 32;
constexpr int kWarps = kThreads / kWarpSize;
// A key row's stride in shared memory, 4 words past a multiple of 32: the 8 lanes of a 128-bit
// load phase read 8 different rows at the same column and so hit 8 distinct 4-bank groups.
constexpr int kKeyStride = kRow + 4;
// Probabilities are stored [key][head] so that a thread's 8 heads are two float4 loads; the pad
// cuts the bank conflicts of the per-lane stores from 16-way to 4-way.
constexpr int kPStride = kHeads + 4;
// Scores: warp w sums columns [w kSlice4, (w + 1) kSlice4) (in float4s), the two half-warps
// taking alternate columns; lane l covers keys l % 16 and l % 16 + 16 for all 16 heads.
constexpr int kSlice4 = kRow4 / kWarps;
static_assert(kRow4 % kWarps == 0 && kSlice4 % 2 == 0);
static_assert(kTile == 2 * 16 && kHeads == 16 && kWarps == 8, "the thread layouts below");
// Output: warp w owns heads [8 (w / 4), +8) and dims [128 (w % 4), +128), 4 per lane.
static_assert(kLora == 4 * 128 && kHeads == 2 * 8);

// Shared memory, in floats; every part starts 16-byte aligned.
constexpr int kQFloats = kHeads * kRow;
constexpr int kStageFloats = kTile * kKeyStride;  // one tile; two stages double-buffer the loads
constexpr int kRedFloats = kWarps * kHeads * kTile;
constexpr int kPFloats = kTile * kPStride;
constexpr int kSmemFloats = kQFloats + 2 * kStageFloats + kRedFloats + kPFloats + 3 * kHeads;
constexpr std::size_t kSmemBytes = kSmemFloats * sizeof(float);
static_assert(kQFloats % 4 == 0 && kStageFloats % 4 == 0 && kRedFloats % 4 == 0 &&
              kPFloats % 4 == 0);
static_assert(kSmemBytes <= 227 * 1024, "Hopper's shared memory per block");

constexpr unsigned kFull = 0xffffffffu;
constexpr int kMaxSplits = 256;  // the merge kernel's shared arrays

__device__ float warp_max(float v) {
    for (int o = kWarpSize / 2; o > 0; o /= 2) {
        v = fmaxf(v, __shfl_xor_sync(kFull, v, o));
    }
    return v;
}

__device__ float warp_sum(float v) {
    for (int o = kWarpSize / 2; o > 0; o /= 2) {
        v += __shfl_xor_sync(kFull, v, o);
    }
    return v;
}

__device__ float4 ld4(const float* p) {
    return *reinterpret_cast<const float4*>(p);
}

__device__ float dot4(float4 a, float4 b, float acc) {
    acc = fmaf(a.x, b.x, acc);
    acc = fmaf(a.y, b.y, acc);
    acc = fmaf(a.z, b.z, acc);
    return fmaf(a.w, b.w, acc);
}

__device__ float4 axpy4(float a, float4 x, float4 y) {
    return make_float4(fmaf(a, x.x, y.x), fmaf(a, x.y, y.y), fmaf(a, x.z, y.z), fmaf(a, x.w, y.w));
}

__device__ float4 scale4(float4 x, float a) {
    return make_float4(x.x * a, x.y * a, x.z * a, x.w * a);
}

// 16 bytes global -> shared without passing through registers (cp.async, L2 only: each row is
// used once per block). A copy with `valid` false reads nothing and writes zeros.
__device__ void cp_async16(void* dst, const void* src, bool valid) {
    const auto addr = static_cast<unsigned>(__cvta_generic_to_shared(dst));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(addr), "l"(src),
                 "r"(valid ? 16 : 0)
                 : "memory");
}

__device__ void cp_async_commit() {
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}

__device__ void cp_async_wait_all() {
    asm volatile("cp.async.wait_group 0;\n" ::: "memory");
}

// Waits for all but the most recently committed group.
__device__ void cp_async_wait_all_but_last() {
    asm volatile("cp.async.wait_group 1;\n" ::: "memory");
}

// Block b takes head group b % groups, split (b / groups) % splits, token b / (groups splits):
// the groups of one (token, split) are neighbours, so they run together and share key rows in
// L2. Split s covers the token's keys [s split_keys, (s + 1) split_keys), the last one to the end.
// With one split the block writes o_lat itself; otherwise it writes its unnormalized output and
// (max, sum) to the workspace, rows [token][split][head].
__global__ void __launch_bounds__(kThreads, 1)
    mla_decode_kernel(const float* __restrict__ q_lat, const float* __restrict__ q,
                      const float* __restrict__ latent, const float* __restrict__ k_rope,
                      const std::int32_t* __restrict__ keys, const std::int32_t* key_offset,
                      const std::int32_t* key_count, MlaShape s, int groups, int splits,
                      int split_keys, float* __restrict__ part_acc, float* __restrict__ part_ml,
                      float* __restrict__ o_lat) {
    pdl_enter();
    extern __shared__ float4 smem4[];
    float* qs = reinterpret_cast<float*>(smem4);  // [kHeads][kRow]
    float* ks = qs + kQFloats;                    // [2][kTile][kKeyStride]
    float* red = ks + 2 * kStageFloats;           // [kWarps][kHeads][kTile] partial scores
    float* ps = red + kRedFloats;                 // [kTile][kPStride] probabilities
    float* fac = ps + kPFloats;                   // [kHeads] rescale of the running output
    float* ml = fac + kHeads;                     // [2][kHeads] final max, sum

    const int block = static_cast<int>(blockIdx.x);
    const int group = block % groups, split = block / groups % splits;
    const int t = block / groups / splits;
    const int h0 = group * kHeads, nh = min(kHeads, s.heads - h0);
    const int count = key_count[t];
    const int begin = min(count, split * split_keys);
    const int end = split + 1 == splits ? count : min(count, begin + split_keys);
    const std::int32_t* slots = keys + key_offset[t] + begin;
    const int n_keys = end - begin;
    const int tiles = (n_keys + kTile - 1) / kTile;

    const int tid = static_cast<int>(threadIdx.x);
    const int lane = tid % kWarpSize, warp = tid / kWarpSize;

    // Query rows [q_lat | q_rope] by cp.async, with the first key tile: one round trip instead of
    // a chain of scalar loads. Heads past the last are zeros and never written out.
    for (int i = tid; i < kHeads * kRow4; i += kThreads) {
        const int h = i / kRow4, c = i % kRow4;
        const bool valid = h < nh;
        const float* src = q_lat;
        if (valid) {
            const std::int64_t row = static_cast<std::int64_t>(t) * s.heads + h0 + h;
            src = c < kLora / 4 ? q_lat + row * kLora + 4 * c
                                : q + row * s.qk + s.nope + 4 * (c - kLora / 4);
        }
        cp_async16(qs + h * kRow + 4 * c, src, valid);
    }

    // Rows past the split's end are zero-filled, so the output loop can run over whole tiles.
    auto load_tile = [&](int tile, int stage) {
        float* dst = ks + stage * kStageFloats;
        const int first = tile * kTile, n = min(kTile, n_keys - first);
        for (int i = tid; i < kTile * kRow4; i += kThreads) {
            const int j = i / kRow4, c = i % kRow4;
            const bool valid = j < n;
            const float* src = latent;
            if (valid) {
                const std::int64_t slot = slots[first + j];
                src = c < kLora / 4 ? latent + slot * kLora + 4 * c
                                    : k_rope + slot * kRope + 4 * (c - kLora / 4);
            }
            cp_async16(dst + j * kKeyStride + 4 * c, src, valid);
        }
        cp_async_commit();
    };

    // Softmax state of heads 2 warp and 2 warp + 1 (identical in all lanes of the warp).
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    // Output: heads ob + i, dims od .. od + 3.
    const int ob = warp / 4 * 8, od = warp % 4 * 128 + lane * 4;
    float4 acc[8];
    for (auto& a : acc) {
        a = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
    const int key_a = lane % 16, half = lane / 16;

    if (tiles > 0) {
        load_tile(0, 0);
    }
    for (int tile = 0; tile < tiles; ++tile) {
        const int stage = tile % 2;
        cp_async_wait_all();
        // This tile (and the query rows) visible to all; every thread is done with the previous
        // tile, so its stage, red, ps and fac may be overwritten.
        __syncthreads();
        if (tile + 1 < tiles) {
            load_tile(tile + 1, 1 - stage);
        }
        const float* kt = ks + stage * kStageFloats;
        const int n = min(kTile, n_keys - tile * kTile);

        float sc[kHeads][2];
#pragma unroll
        for (int h = 0; h < kHeads; ++h) {
            sc[h][0] = sc[h][1] = 0.0f;
        }
#pragma unroll
        for (int i = 0; i < kSlice4 / 2; ++i) {
            const int c = 4 * (warp * kSlice4 + 2 * i + half);
            const float4 a = ld4(kt + key_a * kKeyStride + c);
            const float4 b = ld4(kt + (key_a + 16) * kKeyStride + c);
#pragma unroll
            for (int h = 0; h < kHeads; ++h) {
                const float4 qv = ld4(qs + h * kRow + c);
                sc[h][0] = dot4(qv, a, sc[h][0]);
                sc[h][1] = dot4(qv, b, sc[h][1]);
            }
        }
        // Join the half-warps' columns; then half 0 stores heads 0..7 and half 1 heads 8..15,
        // half 1 starting with its second key so that the two halves' stores use distinct banks.
#pragma unroll
        for (int h = 0; h < kHeads; ++h) {
            sc[h][0] += __shfl_xor_sync(kFull, sc[h][0], 16);
            sc[h][1] += __shfl_xor_sync(kFull, sc[h][1], 16);
        }
#pragma unroll
        for (int h = 0; h < kHeads / 2; ++h) {
            float* r = red + (warp * kHeads + h + 8 * half) * kTile;
            r[key_a + 16 * half] = half == 0 ? sc[h][0] : sc[h + 8][1];
            r[key_a + 16 * (1 - half)] = half == 0 ? sc[h][1] : sc[h + 8][0];
        }
        __syncthreads();

        // Online softmax: warp w updates heads 2w and 2w + 1, lane j holding key j.
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const int h = 2 * warp + r;
            float x = 0.0f;
#pragma unroll
            for (int w = 0; w < kWarps; ++w) {
                x += red[(w * kHeads + h) * kTile + lane];
            }
            x = lane < n ? x * s.scale : -INFINITY;
            // Lane 0 always holds a key, so m_new is finite and the exponents are well defined.
            const float m_new = fmaxf(m[r], warp_max(x));
            const float p = expf(x - m_new), f = expf(m[r] - m_new);
            l[r] = l[r] * f + warp_sum(p);
            m[r] = m_new;
            ps[lane * kPStride + h] = p;
            if (lane == 0) {
                fac[h] = f;
            }
        }
        __syncthreads();

        const float4 f0 = ld4(fac + ob), f1 = ld4(fac + ob + 4);
        acc[0] = scale4(acc[0], f0.x);
        acc[1] = scale4(acc[1], f0.y);
        acc[2] = scale4(acc[2], f0.z);
        acc[3] = scale4(acc[3], f0.w);
        acc[4] = scale4(acc[4], f1.x);
        acc[5] = scale4(acc[5], f1.y);
        acc[6] = scale4(acc[6], f1.z);
        acc[7] = scale4(acc[7], f1.w);
#pragma unroll 4
        for (int j = 0; j < kTile; ++j) {
            const float4 v = ld4(kt + j * kKeyStride + od);
            const float4 p0 = ld4(ps + j * kPStride + ob), p1 = ld4(ps + j * kPStride + ob + 4);
            acc[0] = axpy4(p0.x, v, acc[0]);
            acc[1] = axpy4(p0.y, v, acc[1]);
            acc[2] = axpy4(p0.z, v, acc[2]);
            acc[3] = axpy4(p0.w, v, acc[3]);
            acc[4] = axpy4(p1.x, v, acc[4]);
            acc[5] = axpy4(p1.y, v, acc[5]);
            acc[6] = axpy4(p1.z, v, acc[6]);
            acc[7] = axpy4(p1.w, v, acc[7]);
        }
    }

    if (tiles == 0) {
        cp_async_commit();  // the query rows' copies, so that none is left in flight
        cp_async_wait_all();
    }
    if (lane == 0) {
        ml[2 * warp] = m[0];
        ml[2 * warp + 1] = m[1];
        ml[kHeads + 2 * warp] = l[0];
        ml[kHeads + 2 * warp + 1] = l[1];
    }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        const int h = ob + i;
        if (h >= nh) {
            break;
        }
        if (splits == 1) {
            const float sum = ml[kHeads + h];
            const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
            const std::int64_t row = static_cast<std::int64_t>(t) * s.heads + h0 + h;
            *reinterpret_cast<float4*>(o_lat + row * kLora + od) = scale4(acc[i], inv);
        } else {
            const std::int64_t row =
                (static_cast<std::int64_t>(t) * splits + split) * s.heads + h0 + h;
            *reinterpret_cast<float4*>(part_acc + row * kLora + od) = acc[i];
            if (od == 0) {
                part_ml[2 * row] = ml[h];
                part_ml[2 * row + 1] = ml[kHeads + h];
            }
        }
    }
}

// One block per (token, head), a float4 of dims per thread: o = sum_s w_s acc_s / sum_s w_s l_s
// with w_s = exp(m_s - max m). Splits without keys (l = 0) carry no weight; a token without any
// gets zeros.
__global__ void mla_merge_kernel(const float* __restrict__ part_acc,
                                 const float* __restrict__ part_ml, int heads, int splits,
                                 float* __restrict__ o_lat) {
    pdl_enter();
    __shared__ float2 ml[kMaxSplits];  // (max, sum) of each split
    __shared__ float weight[kMaxSplits];
    const std::int64_t row = blockIdx.x;  // token heads + head
    const std::int64_t t = row / heads, h = row % heads;
    const int d = static_cast<int>(threadIdx.x) * 4;
    for (int sp = static_cast<int>(threadIdx.x); sp < splits; sp += static_cast<int>(blockDim.x)) {
        const std::int64_t prow = (t * splits + sp) * heads + h;
        ml[sp] = make_float2(part_ml[2 * prow], part_ml[2 * prow + 1]);
    }
    __syncthreads();
    float mx = -INFINITY;
    for (int sp = 0; sp < splits; ++sp) {
        if (ml[sp].y > 0.0f) {
            mx = fmaxf(mx, ml[sp].x);
        }
    }
    for (int sp = static_cast<int>(threadIdx.x); sp < splits; sp += static_cast<int>(blockDim.x)) {
        weight[sp] = ml[sp].y > 0.0f ? expf(ml[sp].x - mx) : 0.0f;
    }
    __syncthreads();
    float total = 0.0f;
    float4 o = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    // Independent loads, several in flight: the splits' rows are L2 hits, so their latency, not
    // their bytes, sets the time.
#pragma unroll 8
    for (int sp = 0; sp < splits; ++sp) {
        const std::int64_t prow = (t * splits + sp) * heads + h;
        const float w = weight[sp];
        total += w * ml[sp].y;
        o = axpy4(w, ld4(part_acc + prow * kLora + d), o);
    }
    const float inv = total > 0.0f ? 1.0f / total : 0.0f;
    *reinterpret_cast<float4*>(o_lat + row * kLora + d) = scale4(o, inv);
}

// The BF16 cache on tensor cores. The same split-and-merge plan; per tile the block computes
// S = Q K^T and O += P V as mma.sync m16n8k16 products (bfloat16 operands, float32 sums). A block
// takes 64 heads (four 16-row MMA tiles), so each key row is read once per 64 heads. Warp w owns
// row tile w % 4 and output dims [256 (w / 4), +256): 32 accumulator tiles of 16 x 8. For the
// scores the two warps of a row tile split the tile's keys, and leave them in shared memory for
// both to read back in the layout of an MMA A operand. Queries are rounded to bfloat16 on their
// way into shared memory; the online softmax runs in float32 in base 2.
namespace tc {
constexpr int kHeads = 64;
constexpr int kTile = 32;
constexpr int kThreads = 256;
constexpr int kWarps = kThreads / kWarpSize;
// bfloat16 elements per shared-memory row of Q and K: 1168 bytes, 16 past a multiple of 128, so
// the eight row addresses of an ldmatrix hit eight distinct 16-byte bank groups.
constexpr int kStride = kRow + 8;
// Floats per score row, 8 past a multiple of 32: the float2 accesses of a half-warp (rows g,
// columns 2 q) fall in distinct banks.
constexpr int kScoreStride = kTile + 8;
constexpr int kQElems = kHeads * kStride;
constexpr int kStageElems = kTile * kStride;
// Key tiles in flight: a tile's rows come from scattered slots, so its latency is a whole DRAM
// round trip, longer than the tile's arithmetic; three stages keep two loads in flight.
constexpr int kStages = 3;
constexpr std::size_t kSmemBytes = (kQElems + kStages * kStageElems) * sizeof(__nv_bfloat16) +
                                   kHeads * kScoreStride * sizeof(float);
// Loads: 8 threads a key row, each issuing 9 of its 72 16-byte chunks (8 of the latent, 1 of the
// rotary key), so that a thread needs one slot index a tile.
constexpr int kChunks = kRow / 8;
constexpr int kThreadsPerKey = kThreads / kTile;
constexpr int kChunksPerThread = kChunks / kThreadsPerKey;
static_assert(kThreadsPerKey == 8 && kChunks == kThreadsPerKey * kChunksPerThread &&
              kLora / 8 == 8 * kThreadsPerKey);
constexpr int kOutTiles = kLora / 2 / 8;  // n-tiles of 8 dims in a warp's 256 output dims
constexpr float kLog2e = 1.4426950408889634f, kLn2 = 0.6931471805599453f;
static_assert(kWarps == 8 && kHeads == 4 * 16 && kTile == 2 * 16 && kRow % 32 == 0);
static_assert((kQElems * 2) % 16 == 0 && (kStageElems * 2) % 16 == 0 && (kStride * 2) % 16 == 0);
static_assert(kSmemBytes <= 227 * 1024, "Hopper's shared memory per block");

}  // namespace tc

// Block layout, splits and outputs as mla_decode_kernel's, with tc::kHeads heads a block.
__global__ void __launch_bounds__(tc::kThreads, 1)
    mla_decode_bf16_kernel(const float* __restrict__ q_lat, const float* __restrict__ q,
                           const __nv_bfloat16* __restrict__ latent,
                           const __nv_bfloat16* __restrict__ k_rope,
                           const std::int32_t* __restrict__ keys, const std::int32_t* key_offset,
                           const std::int32_t* key_count, MlaShape s, int groups, int splits,
                           int split_keys, float* __restrict__ part_acc,
                           float* __restrict__ part_ml, float* __restrict__ o_lat) {
    using namespace tc;
    pdl_enter();
    extern __shared__ float4 smem4[];
    auto* qs = reinterpret_cast<__nv_bfloat16*>(smem4);               // [heads][kStride]
    __nv_bfloat16* ks = qs + kQElems;                                 // [kStages][keys][kStride]
    auto* ss = reinterpret_cast<float*>(ks + kStages * kStageElems);  // [heads][kScoreStride]

    const int block = static_cast<int>(blockIdx.x);
    const int group = block % groups, split = block / groups % splits;
    const int t = block / groups / splits;
    const int h0 = group * tc::kHeads, nh = min(tc::kHeads, s.heads - h0);
    const int count = key_count[t];
    const int begin = min(count, split * split_keys);
    const int end = split + 1 == splits ? count : min(count, begin + split_keys);
    const std::int32_t* slots = keys + key_offset[t] + begin;
    const int n_keys = end - begin;
    const int tiles = (n_keys + tc::kTile - 1) / tc::kTile;

    const int tid = static_cast<int>(threadIdx.x);
    const int lane = tid % kWarpSize, warp = tid / kWarpSize;
    const int mt = warp % 4, half = warp / 4;  // row tile; key half (scores), dim half (output)
    const int g = lane / 4, qd = lane % 4;     // a fragment's row, and column pair

    // Key rows of the split, row tid / 8 of each tile for this thread; rows past the split's end
    // are zero-filled. The thread's slot index for a tile is read one tile before its copies are
    // issued, so that its latency is not paid in line.
    const int load_key = tid / kThreadsPerKey, load_part = tid % kThreadsPerKey;
    auto slot_of = [&](int tile) -> std::int64_t {
        const int j = tile * tc::kTile + load_key;
        return j < n_keys ? slots[j] : -1;
    };
    auto load_tile = [&](int tile, std::int64_t slot) {
        if (tile < tiles) {
            __nv_bfloat16* dst = ks + tile % kStages * kStageElems + load_key * kStride;
#pragma unroll
            for (int k = 0; k < kChunksPerThread; ++k) {
                const int c = load_part + kThreadsPerKey * k;
                const __nv_bfloat16* src = latent;
                if (slot >= 0) {
                    src = c < kLora / 8 ? latent + slot * kLora + 8 * c
                                        : k_rope + slot * kRope + 8 * (c - kLora / 8);
                }
                cp_async16(dst + 8 * c, src, slot >= 0);
            }
        }
        cp_async_commit();  // empty past the last tile: one group per tile keeps the count
    };
    load_tile(0, slot_of(0));
    load_tile(1, slot_of(1));
    std::int64_t next_slot = slot_of(2);
    // Query rows [q_lat | q_rope], rounded on the way (so by plain loads, while the first tiles
    // are in flight). Every load is unconditional (heads past the last read the last head's row
    // and store zeros), so that the unrolled loop keeps a dozen in flight instead of one.
    constexpr int kQLoads = tc::kHeads * kRow4 / tc::kThreads;
    static_assert(kQLoads * tc::kThreads == tc::kHeads * kRow4);
#pragma unroll 12
    for (int k = 0; k < kQLoads; ++k) {
        const int i = tid + k * tc::kThreads;
        const int h = i / kRow4, c = i % kRow4;
        const std::int64_t row = static_cast<std::int64_t>(t) * s.heads + h0 + min(h, nh - 1);
        const float* src = c < kLora / 4 ? q_lat + row * kLora + 4 * c
                                         : q + row * s.qk + s.nope + 4 * (c - kLora / 4);
        float4 v = ld4(src);
        if (h >= nh) {
            v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
        *reinterpret_cast<uint2*>(qs + h * kStride + 4 * c) =
            make_uint2(pack_bf16(v.x, v.y), pack_bf16(v.z, v.w));
    }

    const float scale = s.scale * kLog2e;
    float m_run[2] = {-INFINITY, -INFINITY};  // rows g and g + 8 of the row tile, base 2
    float l_run[2] = {0.0f, 0.0f};            // this thread's share of the row sums
    float acc[kOutTiles][4];  // n-tile j: dims 256 half + 8 j + 2 qd (+1), rows g (0, 1), g + 8
#pragma unroll
    for (auto& a : acc) {
        a[0] = a[1] = a[2] = a[3] = 0.0f;
    }
    // ldmatrix row addresses. A (queries): lanes 0-15 rows 0-15 at column 0, lanes 16-31 at
    // column 8. B for scores (keys as columns of K^T): lanes by 8 take keys 0-7 / 0-7 / 8-15 /
    // 8-15 at columns 0 / 8 / 0 / 8, giving b0 b1 of two 8-key tiles. B for the output
    // (transposed): keys 0-7 / 8-15 / 0-7 / 8-15 at dims 0 / 0 / 8 / 8.
    const unsigned q_addr = smem_addr(qs + (16 * mt + lane % 16) * kStride + 8 * (lane / 16));
    const int k_row = 16 * half + lane % 8 + 8 * (lane / 16), k_col = 8 * (lane / 8 % 2);
    const int v_row = lane % 8 + 8 * (lane / 8 % 2), v_col = kLora / 2 * half + 8 * (lane / 16);

    for (int tile = 0; tile < tiles; ++tile) {
        cp_async_wait_all_but_last();  // this tile's group; the next one's may stay in flight
        // This tile (and the queries) visible to all; everyone is done with the previous tile,
        // so its stage (the one tile + 2 loads into) and the scores may be overwritten.
        __syncthreads();
        load_tile(tile + 2, next_slot);
        next_slot = slot_of(tile + 3);
        const __nv_bfloat16* kt = ks + tile % kStages * kStageElems;
        const int n = min(tc::kTile, n_keys - tile * tc::kTile);

        // Two sums per key tile (even and odd column steps), so that four MMA chains, not two,
        // hide each other's latency.
        float sc[2][4] = {}, sc_odd[2][4] = {};
        const unsigned k_addr = smem_addr(kt + k_row * kStride + k_col);
#pragma unroll
        for (int kk = 0; kk < kRow / 16; kk += 2) {
            unsigned a[4], b[4], a1[4], b1[4];
            ldmatrix_x4(a, q_addr + kk * 32);
            ldmatrix_x4(b, k_addr + kk * 32);
            ldmatrix_x4(a1, q_addr + (kk + 1) * 32);
            ldmatrix_x4(b1, k_addr + (kk + 1) * 32);
            mma_bf16(sc[0], a, b[0], b[1]);
            mma_bf16(sc[1], a, b[2], b[3]);
            mma_bf16(sc_odd[0], a1, b1[0], b1[1]);
            mma_bf16(sc_odd[1], a1, b1[2], b1[3]);
        }
#pragma unroll
        for (int j = 0; j < 2; ++j) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                sc[j][e] += sc_odd[j][e];
            }
        }
#pragma unroll
        for (int j = 0; j < 2; ++j) {
            const int key = 16 * half + 8 * j + 2 * qd;
            const float2 lo = make_float2(key < n ? sc[j][0] * scale : -INFINITY,
                                          key + 1 < n ? sc[j][1] * scale : -INFINITY);
            const float2 hi = make_float2(key < n ? sc[j][2] * scale : -INFINITY,
                                          key + 1 < n ? sc[j][3] * scale : -INFINITY);
            *reinterpret_cast<float2*>(ss + (16 * mt + g) * kScoreStride + key) = lo;
            *reinterpret_cast<float2*>(ss + (16 * mt + g + 8) * kScoreStride + key) = hi;
        }
        __syncthreads();

        // Online softmax over the tile's 32 keys, rows g and g + 8: this thread holds keys
        // 8 i + 2 qd (+1), i < 4, the four threads of a quad the rest. Key 0 of a tile is always
        // valid, so the new maxima are finite.
        float p[2][8], f[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const float* row = ss + (16 * mt + g + 8 * r) * kScoreStride + 2 * qd;
            float mx = -INFINITY;
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                const float2 v = *reinterpret_cast<const float2*>(row + 8 * i);
                p[r][2 * i] = v.x;
                p[r][2 * i + 1] = v.y;
                mx = fmaxf(mx, fmaxf(v.x, v.y));
            }
            const float m_new = fmaxf(m_run[r], quad_max(mx));
            f[r] = exp2f(m_run[r] - m_new);
            float sum = 0.0f;
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                p[r][i] = exp2f(p[r][i] - m_new);
                sum += p[r][i];
            }
            l_run[r] = l_run[r] * f[r] + sum;
            m_run[r] = m_new;
        }
        // Once the running maxima settle, most tiles leave every row's scale at 1: skip the 128
        // multiplies then (the test is warp-uniform).
        if (__any_sync(kFull, f[0] != 1.0f || f[1] != 1.0f)) {
#pragma unroll
            for (auto& a : acc) {
                a[0] *= f[0];
                a[1] *= f[0];
                a[2] *= f[1];
                a[3] *= f[1];
            }
        }

        const unsigned v_addr = smem_addr(kt + v_row * kStride + v_col);
#pragma unroll
        for (int kk = 0; kk < tc::kTile / 16; ++kk) {
            // P as an A fragment: keys 16 kk + 2 qd (+1) and + 8, rows g and g + 8.
            const unsigned a[4] = {pack_bf16(p[0][4 * kk], p[0][4 * kk + 1]),
                                   pack_bf16(p[1][4 * kk], p[1][4 * kk + 1]),
                                   pack_bf16(p[0][4 * kk + 2], p[0][4 * kk + 3]),
                                   pack_bf16(p[1][4 * kk + 2], p[1][4 * kk + 3])};
#pragma unroll
            for (int j = 0; j < kOutTiles / 2; ++j) {
                unsigned b[4];
                ldmatrix_x4_trans(b, v_addr + (16 * kk * kStride + 16 * j) * 2);
                mma_bf16(acc[2 * j], a, b[0], b[1]);
                mma_bf16(acc[2 * j + 1], a, b[2], b[3]);
            }
        }
    }

#pragma unroll
    for (int r = 0; r < 2; ++r) {
        const float l = quad_sum(l_run[r]);
        const int h = 16 * mt + g + 8 * r;
        if (h >= nh) {
            continue;
        }
        const int d0 = kLora / 2 * half + 2 * qd;
        if (splits == 1) {
            const float inv = l > 0.0f ? 1.0f / l : 0.0f;
            float* out = o_lat + (static_cast<std::int64_t>(t) * s.heads + h0 + h) * kLora + d0;
#pragma unroll
            for (int j = 0; j < kOutTiles; ++j) {
                *reinterpret_cast<float2*>(out + 8 * j) =
                    make_float2(acc[j][2 * r] * inv, acc[j][2 * r + 1] * inv);
            }
        } else {
            const std::int64_t row =
                (static_cast<std::int64_t>(t) * splits + split) * s.heads + h0 + h;
            float* out = part_acc + row * kLora + d0;
#pragma unroll
            for (int j = 0; j < kOutTiles; ++j) {
                *reinterpret_cast<float2*>(out + 8 * j) =
                    make_float2(acc[j][2 * r], acc[j][2 * r + 1]);
            }
            if (half == 0 && qd == 0) {
                part_ml[2 * row] = m_run[r] * kLn2;  // the merge works in natural units
                part_ml[2 * row + 1] = l;
            }
        }
    }
}

struct Plan {
    int groups, splits, split_keys;
};

constexpr int kMaxDevices = 64;

int current_device() {
    int device = 0;
    check_cuda(cudaGetDevice(&device), "cudaGetDevice");
    return device;
}

int sm_count() {
    static std::array<std::atomic<int>, kMaxDevices> cached{};
    const int device = current_device();
    if (device < kMaxDevices && cached[static_cast<std::size_t>(device)].load() > 0) {
        return cached[static_cast<std::size_t>(device)].load();
    }
    int n = 0;
    check_cuda(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device),
               "cudaDeviceGetAttribute(multiprocessors)");
    if (device < kMaxDevices) {
        cached[static_cast<std::size_t>(device)].store(n);
    }
    return n;
}

// The kernels need more than the default 48 KB of dynamic shared memory, which is opted into per
// device and kernel.
void allow_smem(CacheFormat format) {
    static std::array<std::array<std::atomic<bool>, 2>, kMaxDevices> done{};
    const int device = current_device();
    const auto f = static_cast<std::size_t>(format);
    if (device < kMaxDevices && done[static_cast<std::size_t>(device)][f].load()) {
        return;
    }
    if (format == CacheFormat::bf16) {
        check_cuda(cudaFuncSetAttribute(mla_decode_bf16_kernel,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(tc::kSmemBytes)),
                   "cudaFuncSetAttribute(mla_decode_bf16_kernel)");
    } else {
        check_cuda(
            cudaFuncSetAttribute(mla_decode_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 static_cast<int>(kSmemBytes)),
            "cudaFuncSetAttribute(mla_decode_kernel)");
    }
    if (device < kMaxDevices) {
        done[static_cast<std::size_t>(device)][f].store(true);
    }
}

// The query rows are copied 16 bytes at a time: their parts must start on 16-byte boundaries.
bool supported(const MlaShape& shape) {
    return shape.lora == kLora && shape.rope == kRope && shape.qk % 4 == 0 && shape.nope % 4 == 0;
}

// One block per SM fits (the shared memory). Split keys while tokens x head groups is below the
// target block count (at most the SM count), into as many splits as keep the grid within it (a
// block's fixed costs, the query rows and its partial output, are paid once per block, so a
// second wave of short splits costs more than longer splits in one), in whole tiles, never more
// splits than tiles. Splits of equal length (the last may be shorter) keep the blocks' work even.
Plan plan_for(const MlaShape& shape, int max_keys, int heads_per_block, int tile_keys,
              std::int64_t target) {
    Plan p{};
    p.groups = (shape.heads + heads_per_block - 1) / heads_per_block;
    const int tiles = std::max(1, (max_keys + tile_keys - 1) / tile_keys);
    const std::int64_t blocks = static_cast<std::int64_t>(shape.tokens) * p.groups;
    int splits = 1;
    if (blocks < target) {
        splits = static_cast<int>(
            std::min<std::int64_t>({tiles, target / blocks, std::int64_t{kMaxSplits}}));
    }
    const int tiles_per_split = (tiles + splits - 1) / splits;
    p.splits = (tiles + tiles_per_split - 1) / tiles_per_split;
    p.split_keys = tiles_per_split * tile_keys;
    return p;
}

// A tensor-core block's fixed costs, its 64 query rows and its partial output of 64 heads x 512
// floats (which the merge reads back), are several times a key tile's bytes, so splits of one tile
// are kept only while they fill at most half the SMs; beyond, splits take two tiles. Measured, one
// token: 1K keys 18.3 us in 64 one-tile splits (20.0 in two-tile ones); 2K keys 21.4 us in 64
// two-tile splits against 31.0 in 128 one-tile ones.
Plan plan_for(const MlaShape& shape, int max_keys, CacheFormat format) {
    if (format == CacheFormat::f32) {
        return plan_for(shape, max_keys, kHeads, kTile, sm_count());
    }
    const Plan p = plan_for(shape, max_keys, tc::kHeads, tc::kTile, sm_count());
    const std::int64_t blocks = static_cast<std::int64_t>(shape.tokens) * p.groups * p.splits;
    if (p.splits > 1 && p.split_keys == tc::kTile && 2 * blocks > sm_count()) {
        return plan_for(shape, max_keys, tc::kHeads, 2 * tc::kTile, sm_count());
    }
    return p;
}

}  // namespace

std::size_t mla_decode_workspace_bytes(const MlaShape& shape, int max_keys, CacheFormat format) {
    if (shape.tokens == 0 || !supported(shape)) {
        return 0;
    }
    const Plan p = plan_for(shape, max_keys, format);
    if (p.splits == 1) {
        return 0;
    }
    return static_cast<std::size_t>(shape.tokens) * static_cast<std::size_t>(p.splits) *
           static_cast<std::size_t>(shape.heads) * (kLora + 2) * sizeof(float);
}

void launch_mla_decode(const float* q_lat, const float* q, CacheFormat format, const void* latent,
                       const void* k_rope, const std::int32_t* keys, const std::int32_t* key_offset,
                       const std::int32_t* key_count, const MlaShape& shape, int max_keys,
                       void* workspace, float* o_lat, cudaStream_t stream) {
    if (shape.tokens == 0) {
        return;
    }
    if (!supported(shape) || !aligned16(latent, k_rope, o_lat, q_lat, q)) {
        launch_mla_attend(q_lat, q, format, latent, k_rope, keys, key_offset, key_count, shape,
                          o_lat, stream);
        return;
    }
    const Plan p = plan_for(shape, max_keys, format);
    float* part_acc = nullptr;
    float* part_ml = nullptr;
    if (p.splits > 1) {
        DS_ASSERT(workspace != nullptr && aligned16(workspace), "MLA decode workspace");
        part_acc = static_cast<float*>(workspace);
        part_ml =
            part_acc + static_cast<std::int64_t>(shape.tokens) * p.splits * shape.heads * kLora;
    }
    allow_smem(format);
    const std::int64_t blocks = static_cast<std::int64_t>(shape.tokens) * p.groups * p.splits;
    DS_ASSERT(blocks <= INT32_MAX, blocks);
    if (format == CacheFormat::bf16) {
        launch_kernel(mla_decode_bf16_kernel, static_cast<unsigned>(blocks), tc::kThreads,
                      tc::kSmemBytes, stream, q_lat, q, static_cast<const __nv_bfloat16*>(latent),
                      static_cast<const __nv_bfloat16*>(k_rope), keys, key_offset, key_count, shape,
                      p.groups, p.splits, p.split_keys, part_acc, part_ml, o_lat);
        DS_CUDA_LAUNCH(mla_decode_bf16, stream, shape.tokens, " tokens x ", shape.heads, " heads, ",
                       max_keys, " keys max, ", p.splits, " splits");
    } else {
        launch_kernel(mla_decode_kernel, static_cast<unsigned>(blocks), kThreads, kSmemBytes,
                      stream, q_lat, q, static_cast<const float*>(latent),
                      static_cast<const float*>(k_rope), keys, key_offset, key_count, shape,
                      p.groups, p.splits, p.split_keys, part_acc, part_ml, o_lat);
        DS_CUDA_LAUNCH(mla_decode, stream, shape.tokens, " tokens x ", shape.heads, " heads, ",
                       max_keys, " keys max, ", p.splits, " splits");
    }
    if (p.splits > 1) {
        const std::int64_t rows = static_cast<std::int64_t>(shape.tokens) * shape.heads;
        launch_kernel(mla_merge_kernel, static_cast<unsigned>(rows), kLora / 4, 0, stream, part_acc,
                      part_ml, shape.heads, p.splits, o_lat);
        DS_CUDA_LAUNCH(mla_merge, stream, shape.tokens, " tokens x ", shape.heads, " heads, ",
                       p.splits, " splits");
    }
}

}  // namespace dsserve::backend::cuda
