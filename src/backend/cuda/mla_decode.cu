// Split-key absorbed MLA for decode (see mla_decode.h), in float32.
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
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/mla_decode.h"

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
__device__ void cp_async16(float* dst, const float* src, bool valid) {
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

// The kernel needs more than the default 48 KB of dynamic shared memory, which is opted into per
// device.
void allow_smem() {
    static std::array<std::atomic<bool>, kMaxDevices> done{};
    const int device = current_device();
    if (device < kMaxDevices && done[static_cast<std::size_t>(device)].load()) {
        return;
    }
    check_cuda(cudaFuncSetAttribute(mla_decode_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(kSmemBytes)),
               "cudaFuncSetAttribute(mla_decode_kernel)");
    if (device < kMaxDevices) {
        done[static_cast<std::size_t>(device)].store(true);
    }
}

// The query rows are copied 16 bytes at a time: their parts must start on 16-byte boundaries.
bool supported(const MlaShape& shape) {
    return shape.lora == kLora && shape.rope == kRope && shape.qk % 4 == 0 && shape.nope % 4 == 0;
}

// One block per SM fits (the shared memory). Split keys while tokens x head groups is below the
// SM count, into as many splits as keep the grid within one wave (a block's fixed costs, the
// query rows and its partial output, are paid once per block, so a second wave of short splits
// costs more than longer splits in one), in whole tiles, never more splits than tiles. Splits of
// equal length (the last may be shorter) keep the blocks' work even.
Plan plan_for(const MlaShape& shape, int max_keys) {
    Plan p{};
    p.groups = (shape.heads + kHeads - 1) / kHeads;
    const int tiles = std::max(1, (max_keys + kTile - 1) / kTile);
    const std::int64_t blocks = static_cast<std::int64_t>(shape.tokens) * p.groups;
    const std::int64_t target = sm_count();
    int splits = 1;
    if (blocks < target) {
        splits = static_cast<int>(
            std::min<std::int64_t>({tiles, target / blocks, std::int64_t{kMaxSplits}}));
    }
    const int tiles_per_split = (tiles + splits - 1) / splits;
    p.splits = (tiles + tiles_per_split - 1) / tiles_per_split;
    p.split_keys = tiles_per_split * kTile;
    return p;
}

}  // namespace

std::size_t mla_decode_workspace_bytes(const MlaShape& shape, int max_keys) {
    if (shape.tokens == 0 || !supported(shape)) {
        return 0;
    }
    const Plan p = plan_for(shape, max_keys);
    if (p.splits == 1) {
        return 0;
    }
    return static_cast<std::size_t>(shape.tokens) * static_cast<std::size_t>(p.splits) *
           static_cast<std::size_t>(shape.heads) * (kLora + 2) * sizeof(float);
}

void launch_mla_decode(const float* q_lat, const float* q, const float* latent, const float* k_rope,
                       const std::int32_t* keys, const std::int32_t* key_offset,
                       const std::int32_t* key_count, const MlaShape& shape, int max_keys,
                       void* workspace, float* o_lat, cudaStream_t stream) {
    if (shape.tokens == 0) {
        return;
    }
    if (!supported(shape) || !aligned16(latent, k_rope, o_lat, q_lat, q)) {
        launch_mla_attend(q_lat, q, latent, k_rope, keys, key_offset, key_count, shape, o_lat,
                          stream);
        return;
    }
    const Plan p = plan_for(shape, max_keys);
    float* part_acc = nullptr;
    float* part_ml = nullptr;
    if (p.splits > 1) {
        DS_ASSERT(workspace != nullptr && aligned16(workspace), "MLA decode workspace");
        part_acc = static_cast<float*>(workspace);
        part_ml =
            part_acc + static_cast<std::int64_t>(shape.tokens) * p.splits * shape.heads * kLora;
    }
    allow_smem();
    const std::int64_t blocks = static_cast<std::int64_t>(shape.tokens) * p.groups * p.splits;
    DS_ASSERT(blocks <= INT32_MAX, blocks);
    launch_kernel(mla_decode_kernel, static_cast<unsigned>(blocks), kThreads, kSmemBytes, stream,
                  q_lat, q, latent, k_rope, keys, key_offset, key_count, shape, p.groups, p.splits,
                  p.split_keys, part_acc, part_ml, o_lat);
    DS_CUDA_LAUNCH(mla_decode, stream, shape.tokens, " tokens x ", shape.heads, " heads, ",
                   max_keys, " keys max, ", p.splits, " splits");
    if (p.splits > 1) {
        const std::int64_t rows = static_cast<std::int64_t>(shape.tokens) * shape.heads;
        launch_kernel(mla_merge_kernel, static_cast<unsigned>(rows), kLora / 4, 0, stream, part_acc,
                      part_ml, shape.heads, p.splits, o_lat);
        DS_CUDA_LAUNCH(mla_merge, stream, shape.tokens, " tokens x ", shape.heads, " heads, ",
                       p.splits, " splits");
    }
}

}  // namespace dsserve::backend::cuda
