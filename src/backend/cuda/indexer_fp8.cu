// The FP8 lightning indexer (indexer_fp8.h). A row of dim values sits in one warp, E = dim / 32
// consecutive values a lane, so that the rotation's butterflies are register moves for the first
// log2(E) stages and lane exchanges after, in the order and with the operands of the host's
// model::hadamard_rotate: the rotated rows, their scales and their e4m3 bytes equal the host's for
// equal inputs.
//
// Scores: a block takes 128 keys of a group of query rows that share a key list (one sequence),
// a warp 32 of them as four 8-key MMA column tiles whose fragments stay in registers for every
// row of the group; each row's heads (M, in 16-row tiles) and dims (K, 32 a step) come through a
// double-buffered shared-memory stage. The ReLU and the head weights are applied to the
// accumulators, and a row's weighted heads summed by three shuffles.
#include <cuda_fp8.h>

#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/indexer_fp8.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/mma.cuh"

namespace dsserve::backend::cuda {
namespace {

constexpr unsigned kFull = 0xffffffffu;
constexpr int kWarp = 32;

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = kWarp / 2; o > 0; o /= 2) {
        v += __shfl_xor_sync(kFull, v, o);
    }
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = kWarp / 2; o > 0; o /= 2) {
        v = fmaxf(v, __shfl_xor_sync(kFull, v, o));
    }
    return v;
}

// model::hadamard_rotate over the warp's row (lane l holds values E l .. E l + E - 1).
template <int E>
__device__ __forceinline__ void warp_rotate(float (&v)[E], float norm) {
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
#pragma unroll
    for (int h = 1; h < E; h *= 2) {
#pragma unroll
        for (int e = 0; e < E; ++e) {
            if ((e & h) == 0) {
                const float a = v[e], b = v[e + h];
                v[e] = a + b;
                v[e + h] = a - b;
            }
        }
    }
#pragma unroll
    for (int l = 1; l < kWarp; l *= 2) {
#pragma unroll
        for (int e = 0; e < E; ++e) {
            const float other = __shfl_xor_sync(kFull, v[e], l);
            // The lower index of a pair keeps a + b, the upper a - b (a the lower's value).
            v[e] = (lane & l) != 0 ? other - v[e] : v[e] + other;
        }
    }
#pragma unroll
    for (int e = 0; e < E; ++e) {
        v[e] *= norm;
    }
}

// model::quantize_e4m3_row: the row's bytes to out (E a lane); returns the scale.
template <int E>
__device__ __forceinline__ float warp_quantize(const float (&v)[E], unsigned char* out) {
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    float amax = 1e-4f;
#pragma unroll
    for (int e = 0; e < E; ++e) {
        amax = fmaxf(amax, fabsf(v[e]));
    }
    amax = warp_max(amax);
    int ex = 0;
    const float m = frexpf(amax / 448.0f, &ex);
    const float s = ldexpf(1.0f, m == 0.5f ? ex - 1 : ex);
#pragma unroll
    for (int e = 0; e < E; ++e) {
        out[E * lane + e] = __nv_cvt_float_to_fp8(v[e] / s, __NV_SATFINITE, __NV_E4M3);
    }
    return s;
}

constexpr int kRowWarps = 4;  // tokens (or query heads) a block in the per-row kernels

template <int E>
__global__ void store_index_key_fp8_kernel(const float* k, std::int64_t tokens, const float* g,
                                           const float* b, float eps, int rope_dim,
                                           const std::int32_t* positions, const float* inv_freq,
                                           float attention_factor, float norm,
                                           const std::int32_t* slots, Fp8KeyTable table,
                                           PdlRole role) {
    pdl_begin(role);
    constexpr int kDim = E * kWarp;
    __shared__ float normed[kRowWarps][kDim];
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    const int warp = static_cast<int>(threadIdx.x) / kWarp;
    const std::int64_t t = static_cast<std::int64_t>(blockIdx.x) * kRowWarps + warp;
    if (t < tokens) {
        float v[E];
        float sum = 0.0f;
#pragma unroll
        for (int e = 0; e < E; ++e) {
            v[e] = k[t * kDim + E * lane + e];
            sum += v[e];
        }
        const float mean = warp_sum(sum) / static_cast<float>(kDim);
        float var = 0.0f;
#pragma unroll
        for (int e = 0; e < E; ++e) {
            v[e] -= mean;
            var += v[e] * v[e];
        }
        const float inv = rsqrtf(warp_sum(var) / static_cast<float>(kDim) + eps);
#pragma unroll
        for (int e = 0; e < E; ++e) {
            const int i = E * lane + e;
            v[e] = v[e] * inv * g[i] + b[i];
            normed[warp][i] = v[e];
        }
        __syncwarp();
        // Half-split RoPE (rope_kernel's arithmetic) over the first rope_dim values.
        const int half = rope_dim / 2;
#pragma unroll
        for (int e = 0; e < E; ++e) {
            const int i = E * lane + e;
            if (i < rope_dim) {
                const float angle = static_cast<float>(positions[t]) * inv_freq[i % half];
                const float c = cosf(angle) * attention_factor;
                const float s = sinf(angle) * attention_factor;
                v[e] = i < half ? normed[warp][i] * c - normed[warp][i + half] * s
                                : normed[warp][i] * c + normed[warp][i - half] * s;
            }
        }
        warp_rotate(v, norm);
        const std::int64_t slot = slots[t];
        const float s = warp_quantize(v, table.k8 + slot * kDim);
        if (lane == 0) {
            table.scale[slot] = s;
        }
    }
    pdl_end(role);
}

template <int E>
__global__ void indexer_quantize_q_kernel(const float* q, const float* w, const std::int32_t* q_row,
                                          int rows, int heads, float norm, float scale,
                                          unsigned char* q8, float* wq) {
    pdl_enter();
    constexpr int kDim = E * kWarp;
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    const std::int64_t i =
        static_cast<std::int64_t>(blockIdx.x) * kRowWarps + threadIdx.x / kWarp;  // r heads + h
    if (i >= static_cast<std::int64_t>(rows) * heads) {
        return;
    }
    const std::int64_t r = i / heads, h = i % heads;
    const std::int64_t src = static_cast<std::int64_t>(q_row[r]) * heads + h;
    float v[E];
#pragma unroll
    for (int e = 0; e < E; ++e) {
        v[e] = q[src * kDim + E * lane + e];
    }
    warp_rotate(v, norm);
    const float s = warp_quantize(v, q8 + i * kDim);
    if (lane == 0) {
        wq[i] = w[src] * s * scale;
    }
}

constexpr int kKeyTile = 128;  // keys a block
constexpr int kScoreThreads = 128;
constexpr int kScoreWarps = kScoreThreads / kWarp;
constexpr int kWarpKeys = kKeyTile / kScoreWarps;  // 32: four 8-key column tiles
constexpr int kColTiles = kWarpKeys / 8;
static_assert(kColTiles == 4 && kScoreThreads == kKeyTile);

// Bytes a row of dim values takes in shared memory: 16 past the row, so that the eight rows of an
// ldmatrix phase fall in eight distinct 16-byte bank groups.
__host__ __device__ constexpr int row_stride(int dim) {
    return dim + 16;
}
// Heads fill 16-row MMA tiles; the padding rows are zeros with zero weight.
__host__ __device__ constexpr int padded_heads(int heads) {
    return (heads + 15) / 16 * 16;
}
std::size_t score_smem_bytes(int heads, int dim) {
    const int hp = padded_heads(heads);
    return static_cast<std::size_t>(kKeyTile + 2 * hp) * row_stride(dim) +
           (2 * static_cast<std::size_t>(hp) + kKeyTile) * sizeof(float);
}

template <int D>
__global__ void __launch_bounds__(kScoreThreads)
    indexer_scores_fp8_kernel(const unsigned char* q8, const float* wq, Fp8KeyTable table,
                              const std::int32_t* keys, const std::int32_t* key_offset,
                              const std::int32_t* key_count, const std::int32_t* group_first,
                              int heads, std::int64_t ld, float* score) {
    pdl_enter();
    constexpr int kSteps = D / 32;
    constexpr int kStride = row_stride(D);
    constexpr int kChunks = D / 16;  // 16-byte pieces of a row
    const int hp = padded_heads(heads);
    extern __shared__ uint4 smem[];
    auto* ks = reinterpret_cast<unsigned char*>(smem);           // [kKeyTile][kStride]
    unsigned char* qs = ks + kKeyTile * kStride;                 // [2][hp][kStride]
    auto* ws = reinterpret_cast<float*>(qs + 2 * hp * kStride);  // [2][hp]
    float* kscale = ws + 2 * hp;                                 // [kKeyTile]

    const int first = group_first[blockIdx.y];
    const int rows = group_first[blockIdx.y + 1] - first;
    const int tile0 = static_cast<int>(blockIdx.x) * kKeyTile;
    int visible = 0;
    for (int r = 0; r < rows; ++r) {
        visible = max(visible, key_count[first + r]);
    }
    if (tile0 >= visible) {
        return;
    }
    const std::int32_t* slots = keys + key_offset[first];
    const int tid = static_cast<int>(threadIdx.x);
    // The key tile; keys past the last visible one load key 0's row, and score nothing.
    for (int c = tid; c < kKeyTile * kChunks; c += kScoreThreads) {
        const int key = c / kChunks, part = c % kChunks;
        const int j = tile0 + key;
        const std::int64_t slot = slots[j < visible ? j : 0];
        copy_async16(smem_addr(ks + key * kStride + 16 * part), table.k8 + slot * D + 16 * part);
    }
    {
        const int j = tile0 + tid;
        kscale[tid] = j < visible ? table.scale[slots[j]] : 0.0f;
    }
    auto load_row = [&](int r, int buf) {
        unsigned char* dst = qs + buf * hp * kStride;
        const unsigned char* src = q8 + static_cast<std::int64_t>(first + r) * heads * D;
        for (int c = tid; c < hp * kChunks; c += kScoreThreads) {
            const int h = c / kChunks, part = c % kChunks;
            if (h < heads) {
                copy_async16(smem_addr(dst + h * kStride + 16 * part), src + h * D + 16 * part);
            } else {
                *reinterpret_cast<uint4*>(dst + h * kStride + 16 * part) = make_uint4(0, 0, 0, 0);
            }
        }
        for (int h = tid; h < hp; h += kScoreThreads) {
            ws[buf * hp + h] =
                h < heads ? wq[static_cast<std::int64_t>(first + r) * heads + h] : 0.0f;
        }
    };
    load_row(0, 0);
    commit_async();

    const int lane = tid % kWarp, warp = tid / kWarp;
    const int g = lane / 4, qd = lane % 4;
    unsigned b[kSteps][kColTiles][2];
    for (int r = 0; r < rows; ++r) {
        if (r + 1 < rows) {
            load_row(r + 1, (r + 1) % 2);
            commit_async();
            wait_async<1>();
        } else {
            wait_async<0>();
        }
        __syncthreads();
        if (r == 0) {
            // The warp's 32 keys as B fragments: matrices (keys 8 j.., bytes 0-15 / 16-31) and
            // (keys 8 (j + 1).., the same) of each k step.
#pragma unroll
            for (int s = 0; s < kSteps; ++s) {
#pragma unroll
                for (int j = 0; j < kColTiles; j += 2) {
                    const int key = kWarpKeys * warp + 8 * (j + lane / 16) + lane % 8;
                    unsigned f[4];
                    ldmatrix_x4(f, smem_addr(ks + key * kStride + 32 * s + 16 * (lane / 8 % 2)));
                    b[s][j][0] = f[0];
                    b[s][j][1] = f[1];
                    b[s][j + 1][0] = f[2];
                    b[s][j + 1][1] = f[3];
                }
            }
        }
        const int buf = r % 2;
        const unsigned char* qrow = qs + buf * hp * kStride;
        const float* wrow = ws + buf * hp;
        float total[kColTiles][2] = {};
        for (int mt = 0; mt < hp / 16; ++mt) {
            float acc[kColTiles][4] = {};
            const int head = 16 * mt + lane % 8 + 8 * (lane / 8 % 2);
#pragma unroll
            for (int s = 0; s < kSteps; ++s) {
                unsigned a[4];
                ldmatrix_x4(a, smem_addr(qrow + head * kStride + 32 * s + 16 * (lane / 16)));
#pragma unroll
                for (int j = 0; j < kColTiles; ++j) {
                    mma_e4m3(acc[j], a[0], a[1], a[2], a[3], b[s][j][0], b[s][j][1]);
                }
            }
            const float w_lo = wrow[16 * mt + g], w_hi = wrow[16 * mt + g + 8];
#pragma unroll
            for (int j = 0; j < kColTiles; ++j) {
                total[j][0] += w_lo * fmaxf(acc[j][0], 0.0f) + w_hi * fmaxf(acc[j][2], 0.0f);
                total[j][1] += w_lo * fmaxf(acc[j][1], 0.0f) + w_hi * fmaxf(acc[j][3], 0.0f);
            }
        }
        // Sum over the eight row groups (lanes apart by 4, 8, 16).
#pragma unroll
        for (int j = 0; j < kColTiles; ++j) {
#pragma unroll
            for (int c = 0; c < 2; ++c) {
                float v = total[j][c];
                v += __shfl_xor_sync(kFull, v, 4);
                v += __shfl_xor_sync(kFull, v, 8);
                v += __shfl_xor_sync(kFull, v, 16);
                total[j][c] = v;
            }
        }
        if (g == 0) {
            const int count = key_count[first + r];
            float* out = score + static_cast<std::int64_t>(first + r) * ld;
#pragma unroll
            for (int j = 0; j < kColTiles; ++j) {
#pragma unroll
                for (int c = 0; c < 2; ++c) {
                    const int key = kWarpKeys * warp + 8 * j + 2 * qd + c;
                    if (tile0 + key < count) {
                        out[tile0 + key] = total[j][c] * kscale[key];
                    }
                }
            }
        }
        __syncthreads();  // the stage this row read is the one the next row's successor loads
    }
}

__global__ void dequantize_key_rows_kernel(Fp8KeyTable table, std::int64_t n, int dim, float* out) {
    pdl_enter();
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) {
        __nv_fp8_e4m3 v;
        v.__x = table.k8[i];
        out[i] = static_cast<float>(v) * table.scale[i / dim];
    }
}

template <typename Kernel32, typename Kernel64, typename Kernel128>
auto by_dim(int dim, Kernel32 k32, Kernel64 k64, Kernel128 k128) {
    DS_ASSERT(indexer_fp8_supports(dim), "an FP8 index row of ", dim, " values");
    return dim == 32 ? k32 : dim == 64 ? k64 : k128;
}

}  // namespace

bool indexer_fp8_supports(int head_dim) {
    return head_dim == 32 || head_dim == 64 || head_dim == 128;
}

void launch_store_index_key_fp8(const float* k, std::int64_t tokens, int dim, const float* g,
                                const float* b, float eps, int rope_dim,
                                const std::int32_t* positions, const float* inv_freq,
                                float attention_factor, float norm, const std::int32_t* slots,
                                Fp8KeyTable table, cudaStream_t stream, PdlRole role) {
    DS_ASSERT(rope_dim % 2 == 0 && rope_dim <= dim, rope_dim, " ", dim);
    if (tokens == 0) {
        return;
    }
    auto* kernel = by_dim(dim, store_index_key_fp8_kernel<1>, store_index_key_fp8_kernel<2>,
                          store_index_key_fp8_kernel<4>);
    launch_kernel(kernel, static_cast<unsigned>((tokens + kRowWarps - 1) / kRowWarps),
                  kRowWarps * kWarp, 0, stream, k, tokens, g, b, eps, rope_dim, positions, inv_freq,
                  attention_factor, norm, slots, table, role);
    DS_CUDA_LAUNCH(store_index_key_fp8, stream, tokens, " tokens, dim ", dim, " rope ", rope_dim);
}

void launch_indexer_quantize_q(const float* q, const float* w, const std::int32_t* q_row, int rows,
                               int heads, int dim, float norm, float scale, unsigned char* q8,
                               float* wq, cudaStream_t stream) {
    const std::int64_t n = static_cast<std::int64_t>(rows) * heads;
    if (n == 0) {
        return;
    }
    auto* kernel = by_dim(dim, indexer_quantize_q_kernel<1>, indexer_quantize_q_kernel<2>,
                          indexer_quantize_q_kernel<4>);
    launch_kernel(kernel, static_cast<unsigned>((n + kRowWarps - 1) / kRowWarps), kRowWarps * kWarp,
                  0, stream, q, w, q_row, rows, heads, norm, scale, q8, wq);
    DS_CUDA_LAUNCH(indexer_quantize_q, stream, rows, " rows x ", heads, " heads of ", dim);
}

void launch_indexer_scores_fp8(const unsigned char* q8, const float* wq, Fp8KeyTable table,
                               const std::int32_t* keys, const std::int32_t* key_offset,
                               const std::int32_t* key_count, const std::int32_t* group_first,
                               int groups, int max_keys, int heads, int dim, std::int64_t ld,
                               float* score, cudaStream_t stream) {
    if (groups == 0 || max_keys == 0) {
        return;
    }
    DS_ASSERT(heads >= 1 && groups <= 65535, heads, " heads, ", groups, " groups");
    auto* kernel = by_dim(dim, indexer_scores_fp8_kernel<32>, indexer_scores_fp8_kernel<64>,
                          indexer_scores_fp8_kernel<128>);
    const std::size_t smem = score_smem_bytes(heads, dim);
    if (smem > 48 * 1024) {
        check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(smem)),
                   "cudaFuncSetAttribute (indexer scores)");
    }
    const dim3 grid(static_cast<unsigned>((max_keys + kKeyTile - 1) / kKeyTile),
                    static_cast<unsigned>(groups));
    launch_kernel(kernel, grid, kScoreThreads, smem, stream, q8, wq, table, keys, key_offset,
                  key_count, group_first, heads, ld, score);
    DS_CUDA_LAUNCH(indexer_scores_fp8, stream, groups, " groups, ", max_keys, " keys, ", heads,
                   " heads of ", dim);
}

void launch_dequantize_key_rows(Fp8KeyTable table, std::int64_t rows, int dim, float* out,
                                cudaStream_t stream) {
    const std::int64_t n = rows * dim;
    if (n == 0) {
        return;
    }
    launch_kernel(dequantize_key_rows_kernel, static_cast<unsigned>((n + 255) / 256), 256, 0,
                  stream, table, n, dim, out);
    DS_CUDA_LAUNCH(dequantize_key_rows, stream, rows, " rows of ", dim);
}

}  // namespace dsserve::backend::cuda
