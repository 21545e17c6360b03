// The CUDA backend's kernels, in float32. They mirror backend/cpu op for op; the reductions run
// as trees instead of left to right, so results agree to rounding, not bit for bit.
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <cfloat>
#include <cstddef>
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/fp8_quant.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/rope.cuh"

namespace dsserve::backend::cuda {
namespace {

constexpr int kWarp = 32;

__device__ float warp_sum(float v) {
    for (int o = kWarp / 2; o > 0; o /= 2) {
        v += __shfl_xor_sync(0xffffffffu, v, o);
    }
    return v;
}

// Sum over the block; every thread gets the total. `scratch` holds one float per warp.
__device__ float block_sum(float v, float* scratch) {
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    v = warp_sum(v);
    __syncthreads();  // scratch may still be read from a previous call
    if (lane == 0) {
        scratch[warp] = v;
    }
    __syncthreads();
    float total = 0.0f;
    for (int i = 0; i < static_cast<int>(blockDim.x) / kWarp; ++i) {
        total += scratch[i];
    }
    return total;
}

unsigned blocks_for(std::int64_t n, int threads) {
    return static_cast<unsigned>((n + threads - 1) / threads);
}

__global__ void rms_norm_kernel(const float* x, const float* g, float eps, float* y, int dim) {
    pdl_enter();
    __shared__ float scratch[32];
    const float* in = x + static_cast<std::int64_t>(blockIdx.x) * dim;
    float* out = y + static_cast<std::int64_t>(blockIdx.x) * dim;
    float sum = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        sum += in[i] * in[i];
    }
    const float inv = rsqrtf(block_sum(sum, scratch) / static_cast<float>(dim) + eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        out[i] = g[i] * (in[i] * inv);
    }
}

// The row in registers, four floats per load: one block reads a 7,168-wide row with every load
// in flight at once (a loop of dependent-latency loads made the plain kernel 15 us a row).
constexpr int kNormThreads = 512, kNormVectors = 4;
// h = RMSNorm(x) * g, or with kAdd first x += y (written back): a residual add and the next
// sub-block's norm in one pass. x and h may alias.
// With x8 set, h is also written in block FP8 (fp8_quant.cuh): a 128-value group is 32 float4s,
// one warp's (dim4 a multiple of 32 keeps `i < dim4` the same across a warp).
template <bool kAdd>
__global__ void rms_norm_vec_kernel(float4* x, const float4* y, const float4* g, float eps,
                                    float4* h, int dim4, unsigned char* x8, float* xs,
                                    PdlRole role) {
    pdl_begin(role);
    __shared__ float scratch[32];
    const std::int64_t base = static_cast<std::int64_t>(blockIdx.x) * dim4;
    float4 v[kNormVectors], w[kNormVectors];
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < kNormVectors; ++j) {
        const int i = threadIdx.x + j * kNormThreads;
        v[j] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (i < dim4) {
            w[j] = g[i];  // with the row's loads, not after the reduction
            v[j] = x[base + i];
            if constexpr (kAdd) {
                const float4 b = y[base + i];
                v[j] = make_float4(v[j].x + b.x, v[j].y + b.y, v[j].z + b.z, v[j].w + b.w);
                x[base + i] = v[j];
            }
        }
        sum += v[j].x * v[j].x + v[j].y * v[j].y + v[j].z * v[j].z + v[j].w * v[j].w;
    }
    const float inv = rsqrtf(block_sum(sum, scratch) / static_cast<float>(4 * dim4) + eps);
#pragma unroll
    for (int j = 0; j < kNormVectors; ++j) {
        const int i = threadIdx.x + j * kNormThreads;
        if (i < dim4) {
            const float4 o = make_float4(w[j].x * (v[j].x * inv), w[j].y * (v[j].y * inv),
                                         w[j].z * (v[j].z * inv), w[j].w * (v[j].w * inv));
            h[base + i] = o;
            if (x8 != nullptr) {
                const int group = i / kWarp;
                quantize_group_warp(
                    o, x8 + 4 * base + group * kFp8Group,
                    xs + static_cast<std::int64_t>(blockIdx.x) * (dim4 / kWarp) + group);
            }
        }
    }
    pdl_end(role);
}

// One block per new token: RMSNorm of the latent part straight into its cache row, and the
// interleaved rotation of the rotary part into the rotary cache row (the formulas of
// rms_norm_kernel and rope_kernel).
__device__ __forceinline__ float cache_load(const float* p) {
    return *p;
}
__device__ __forceinline__ float cache_load(const __nv_bfloat16* p) {
    return __bfloat162float(*p);
}
__device__ __forceinline__ void cache_store(float* p, float v) {
    *p = v;
}
__device__ __forceinline__ void cache_store(__nv_bfloat16* p, float v) {
    *p = __float2bfloat16_rn(v);
}

template <typename Cache>
__global__ void store_latent_kernel(const float* kv, int lora, int rope_dim, const float* g,
                                    float eps, const std::int32_t* positions, const float* inv_freq,
                                    float attention_factor, const std::int32_t* slots,
                                    Cache* latent, Cache* k_rope, PdlRole role) {
    pdl_begin(role);
    __shared__ float scratch[32];
    const int t = blockIdx.x;
    const float* in = kv + static_cast<std::int64_t>(t) * (lora + rope_dim);
    float sum = 0.0f;
    for (int i = threadIdx.x; i < lora; i += blockDim.x) {
        sum += in[i] * in[i];
    }
    const float inv = rsqrtf(block_sum(sum, scratch) / static_cast<float>(lora) + eps);
    const std::int64_t slot = slots[t];
    Cache* out = latent + slot * lora;
    for (int i = threadIdx.x; i < lora; i += blockDim.x) {
        cache_store(out + i, g[i] * (in[i] * inv));
    }
    const float* k = in + lora;
    Cache* kr = k_rope + slot * rope_dim;
    for (int i = threadIdx.x; i < rope_dim / 2; i += blockDim.x) {
        const float angle = static_cast<float>(positions[t]) * inv_freq[i];
        const float c = cosf(angle) * attention_factor, s = sinf(angle) * attention_factor;
        const float x0 = k[2 * i], x1 = k[2 * i + 1];
        cache_store(kr + 2 * i, x0 * c - x1 * s);
        cache_store(kr + 2 * i + 1, x1 * c + x0 * s);
    }
    pdl_end(role);
}

// One block per new token, a thread per value: layer_norm_kernel's formula, then rope_kernel's
// half-split rotation, written to the token's cache row.
__global__ void store_index_key_kernel(const float* k, int dim, const float* g, const float* b,
                                       float eps, int rope_dim, const std::int32_t* positions,
                                       const float* inv_freq, float attention_factor,
                                       const std::int32_t* slots, float* index_k, PdlRole role) {
    pdl_begin(role);
    __shared__ float scratch[32];
    __shared__ float normed[kMaxIndexKeyDim];
    const int t = blockIdx.x, i = threadIdx.x;
    const float x = i < dim ? k[static_cast<std::int64_t>(t) * dim + i] : 0.0f;
    const float mean = block_sum(x, scratch) / static_cast<float>(dim);
    const float d = i < dim ? x - mean : 0.0f;
    const float inv = rsqrtf(block_sum(d * d, scratch) / static_cast<float>(dim) + eps);
    if (i < dim) {
        normed[i] = d * inv * g[i] + b[i];
    }
    __syncthreads();
    if (i >= dim) {
        pdl_end(role);
        return;
    }
    const int half = rope_dim / 2;
    float v = normed[i];
    if (i < rope_dim) {
        const int j = i % half;
        const float angle = static_cast<float>(positions[t]) * inv_freq[j];
        const float c = cosf(angle) * attention_factor, s = sinf(angle) * attention_factor;
        v = i < half ? normed[i] * c - normed[i + half] * s : normed[i] * c + normed[i - half] * s;
    }
    index_k[static_cast<std::int64_t>(slots[t]) * dim + i] = v;
    pdl_end(role);
}

__global__ void layer_norm_kernel(const float* x, const float* g, const float* b, float eps,
                                  float* y, int dim) {
    pdl_enter();
    __shared__ float scratch[32];
    const float* in = x + static_cast<std::int64_t>(blockIdx.x) * dim;
    float* out = y + static_cast<std::int64_t>(blockIdx.x) * dim;
    float sum = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        sum += in[i];
    }
    const float mean = block_sum(sum, scratch) / static_cast<float>(dim);
    float var = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        var += (in[i] - mean) * (in[i] - mean);
    }
    const float inv = rsqrtf(block_sum(var, scratch) / static_cast<float>(dim) + eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        out[i] = (in[i] - mean) * inv * g[i] + b[i];
    }
}

__global__ void rope_kernel(float* x, std::int64_t rows, int num_heads, int head_stride, int offset,
                            int half, const std::int32_t* positions, const float* inv_freq,
                            float attention_factor, bool interleaved) {
    pdl_enter();
    const std::int64_t item = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (item >= rows * num_heads * half) {
        return;
    }
    const int i = static_cast<int>(item % half);
    const int h = static_cast<int>((item / half) % num_heads);
    const std::int64_t r = item / (static_cast<std::int64_t>(half) * num_heads);
    float* v =
        x + r * num_heads * head_stride + static_cast<std::int64_t>(h) * head_stride + offset;
    float* a = interleaved ? v + 2 * i : v + i;
    float* b = interleaved ? v + 2 * i + 1 : v + i + half;
    float x0 = *a, x1 = *b;
    rope_rotate(x0, x1, positions[r], inv_freq[i], attention_factor);
    *a = x0;
    *b = x1;
}

__global__ void silu_mul_kernel(const float* gate, const float* up, float* out, std::int64_t n) {
    pdl_enter();
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) {
        const float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

// Rows of [gate | up], each `width` wide.
__global__ void silu_mul_rows_kernel(const float* gate_up, int width, std::int64_t n, float* out) {
    pdl_enter();
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) {
        const std::int64_t r = i / width, c = i % width;
        const float g = gate_up[r * 2 * width + c];
        out[i] = g / (1.0f + expf(-g)) * gate_up[r * 2 * width + width + c];
    }
}

__global__ void add_kernel(float* x, const float* y, std::int64_t n) {
    pdl_enter();
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) {
        x[i] += y[i];
    }
}

__global__ void scale_kernel(float* x, float s, std::int64_t n) {
    pdl_enter();
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) {
        x[i] *= s;
    }
}

// Row copies: 16-byte accesses where the width allows (every model width does), several in
// flight per thread; a decode step copies single rows, where only latency counts.
__device__ void copy_row(const float* in, float* out, int n) {
    if (n % 4 == 0 && aligned16(in, out)) {
#pragma unroll 4
        for (int i = threadIdx.x; i < n / 4; i += blockDim.x) {
            reinterpret_cast<float4*>(out)[i] = reinterpret_cast<const float4*>(in)[i];
        }
        return;
    }
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        out[i] = in[i];
    }
}

template <typename Index>
__global__ void gather_rows_kernel(const float* src, const Index* index, int cols, float* dst) {
    pdl_enter();
    const Index from = index[blockIdx.x];
    float* out = dst + static_cast<std::int64_t>(blockIdx.x) * cols;
    const float* in = src + static_cast<std::int64_t>(from < 0 ? 0 : from) * cols;
    if (cols % 4 == 0 && aligned16(src, dst)) {
        const auto* in4 = reinterpret_cast<const float4*>(in);
        auto* out4 = reinterpret_cast<float4*>(out);
#pragma unroll 4
        for (int i = threadIdx.x; i < cols / 4; i += blockDim.x) {
            out4[i] = from < 0 ? make_float4(0.0f, 0.0f, 0.0f, 0.0f) : in4[i];
        }
        return;
    }
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        out[i] = from < 0 ? 0.0f : in[i];
    }
}

__global__ void scatter_rows_kernel(const float* src, const std::int32_t* index, int cols,
                                    float* dst) {
    pdl_enter();
    copy_row(src + static_cast<std::int64_t>(blockIdx.x) * cols,
             dst + static_cast<std::int64_t>(index[blockIdx.x]) * cols, cols);
}

// Grid (key blocks, rows). The block keeps its query row in shared memory; each warp scores one
// key at a time, lanes splitting the head dimension.
__global__ void indexer_scores_kernel(const float* q, const float* w, const float* index_k,
                                      const std::int32_t* q_row, const std::int32_t* keys,
                                      const std::int32_t* key_offset, const std::int32_t* key_count,
                                      int num_heads, int head_dim, float scale, std::int64_t ld,
                                      float* score) {
    pdl_enter();
    extern __shared__ float smem[];
    float* qs = smem;                         // [heads * head_dim]
    float* ws = smem + num_heads * head_dim;  // [heads]
    const int r = blockIdx.y;
    const std::int64_t qr = q_row[r];
    for (int i = threadIdx.x; i < num_heads * head_dim; i += blockDim.x) {
        qs[i] = q[qr * num_heads * head_dim + i];
    }
    for (int i = threadIdx.x; i < num_heads; i += blockDim.x) {
        ws[i] = w[qr * num_heads + i];
    }
    __syncthreads();
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    const int warps = blockDim.x / kWarp;
    const std::int32_t* slots = keys + key_offset[r];
    for (int p = blockIdx.x * warps + warp; p < key_count[r]; p += gridDim.x * warps) {
        const float* k = index_k + static_cast<std::int64_t>(slots[p]) * head_dim;
        float total = 0.0f;
        for (int h = 0; h < num_heads; ++h) {
            float dot = 0.0f;
            for (int d = lane; d < head_dim; d += kWarp) {
                dot += qs[h * head_dim + d] * k[d];
            }
            dot = warp_sum(dot);
            total += ws[h] * fmaxf(0.0f, dot * scale);
        }
        if (lane == 0) {
            score[r * ld + p] = total;
        }
    }
}

// A thread per key: the thread keeps every head's partial dot product in registers and walks the
// key's dims 16 at a time, each query value a shared-memory broadcast that feeds as many
// multiply-adds as there are keys in the warp. No shuffles, and four multiply-adds a shared load
// (the kernel above spends most of its instructions on a warp reduction per head). Heads: H,
// head_dim a multiple of 16, rows 16-byte aligned (launch_indexer_scores checks).
constexpr int kIndexerChunk = 16;

template <int H>
__global__ void indexer_scores_lanes_kernel(const float* q, const float* w, const float* index_k,
                                            const std::int32_t* q_row, const std::int32_t* keys,
                                            const std::int32_t* key_offset,
                                            const std::int32_t* key_count, int head_dim,
                                            float scale, std::int64_t ld, float* score) {
    pdl_enter();
    extern __shared__ float4 smem4[];
    auto* qs = reinterpret_cast<float*>(smem4);  // [H * head_dim]
    float* ws = qs + H * head_dim;               // [H]
    const int r = blockIdx.y;
    const std::int64_t qr = q_row[r];
    for (int i = threadIdx.x; i < H * head_dim / 4; i += blockDim.x) {
        smem4[i] = reinterpret_cast<const float4*>(q + qr * H * head_dim)[i];
    }
    for (int i = threadIdx.x; i < H; i += blockDim.x) {
        ws[i] = w[qr * H + i];
    }
    __syncthreads();
    const std::int32_t* slots = keys + key_offset[r];
    const int count = key_count[r];
    for (int p = blockIdx.x * blockDim.x + threadIdx.x; p < count; p += gridDim.x * blockDim.x) {
        const auto* k = reinterpret_cast<const float4*>(
            index_k + static_cast<std::int64_t>(slots[p]) * head_dim);
        float acc[H];
#pragma unroll
        for (int h = 0; h < H; ++h) {
            acc[h] = 0.0f;
        }
        for (int d0 = 0; d0 < head_dim; d0 += kIndexerChunk) {
            float4 kv[kIndexerChunk / 4];
#pragma unroll
            for (int j = 0; j < kIndexerChunk / 4; ++j) {
                kv[j] = k[d0 / 4 + j];
            }
#pragma unroll
            for (int h = 0; h < H; ++h) {
                const auto* qh = reinterpret_cast<const float4*>(qs + h * head_dim + d0);
                float a = acc[h];
#pragma unroll
                for (int j = 0; j < kIndexerChunk / 4; ++j) {
                    const float4 qv = qh[j];
                    a = fmaf(qv.x, kv[j].x, a);
                    a = fmaf(qv.y, kv[j].y, a);
                    a = fmaf(qv.z, kv[j].z, a);
                    a = fmaf(qv.w, kv[j].w, a);
                }
                acc[h] = a;
            }
        }
        float total = 0.0f;
#pragma unroll
        for (int h = 0; h < H; ++h) {
            total += ws[h] * fmaxf(0.0f, acc[h] * scale);
        }
        score[r * ld + p] = total;
    }
}

constexpr int kMlaChunk = 32;

// One block per (token, head): an online softmax over the token's keys in chunks, the output
// accumulated in shared memory. Warps score keys (lanes split the dims); then every thread owns
// a set of latent dims and adds the chunk's weighted rows.
template <typename Cache>
__global__ void mla_attend_kernel(const float* q_lat, const float* q, const Cache* latent,
                                  const Cache* k_rope, const std::int32_t* keys,
                                  const std::int32_t* key_offset, const std::int32_t* key_count,
                                  MlaShape s, float* o_lat) {
    pdl_enter();
    extern __shared__ float smem[];
    float* qs = smem;                   // [lora + rope]
    float* acc = qs + s.lora + s.rope;  // [lora]
    float* p = acc + s.lora;            // [chunk]
    __shared__ std::int32_t chunk_slot[kMlaChunk];
    const int t = blockIdx.x, h = blockIdx.y;
    const float* ql = q_lat + (static_cast<std::int64_t>(t) * s.heads + h) * s.lora;
    const float* qr = q + (static_cast<std::int64_t>(t) * s.heads + h) * s.qk + s.nope;
    for (int i = threadIdx.x; i < s.lora; i += blockDim.x) {
        qs[i] = ql[i];
        acc[i] = 0.0f;
    }
    for (int i = threadIdx.x; i < s.rope; i += blockDim.x) {
        qs[s.lora + i] = qr[i];
    }
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    const int warps = blockDim.x / kWarp;
    const std::int32_t* slots = keys + key_offset[t];
    const int count = key_count[t];
    float m = -FLT_MAX, l = 0.0f;
    for (int base = 0; base < count; base += kMlaChunk) {
        const int n = min(kMlaChunk, count - base);
        __syncthreads();  // qs ready; the previous chunk's p and chunk_slot consumed
        for (int j = warp; j < n; j += warps) {
            const std::int32_t slot = slots[base + j];
            const Cache* c = latent + static_cast<std::int64_t>(slot) * s.lora;
            const Cache* kr = k_rope + static_cast<std::int64_t>(slot) * s.rope;
            float dot = 0.0f;
            for (int d = lane; d < s.lora; d += kWarp) {
                dot += qs[d] * cache_load(c + d);
            }
            for (int d = lane; d < s.rope; d += kWarp) {
                dot += qs[s.lora + d] * cache_load(kr + d);
            }
            dot = warp_sum(dot);
            if (lane == 0) {
                p[j] = dot * s.scale;
                chunk_slot[j] = slot;
            }
        }
        __syncthreads();
        float chunk_max = -FLT_MAX;
        for (int j = 0; j < n; ++j) {
            chunk_max = fmaxf(chunk_max, p[j]);
        }
        const float m_new = fmaxf(m, chunk_max);
        const float factor = expf(m - m_new);
        __syncthreads();  // every thread has read the raw scores
        if (static_cast<int>(threadIdx.x) < n) {
            p[threadIdx.x] = expf(p[threadIdx.x] - m_new);
        }
        __syncthreads();
        float chunk_sum = 0.0f;
        for (int j = 0; j < n; ++j) {
            chunk_sum += p[j];
        }
        l = l * factor + chunk_sum;
        for (int d = threadIdx.x; d < s.lora; d += blockDim.x) {
            float a = acc[d] * factor;
            for (int j = 0; j < n; ++j) {
                a += p[j] *
                     cache_load(latent + static_cast<std::int64_t>(chunk_slot[j]) * s.lora + d);
            }
            acc[d] = a;
        }
        m = m_new;
    }
    float* out = o_lat + (static_cast<std::int64_t>(t) * s.heads + h) * s.lora;
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    for (int d = threadIdx.x; d < s.lora; d += blockDim.x) {
        out[d] = acc[d] * inv;
    }
}

constexpr float kFp8Max = 448.0f;

// One block per 128x128 tile: the tile's largest magnitude sets its scale.
__global__ void quantize_weight_kernel(const float* w, std::int64_t rows, std::int64_t cols,
                                       __nv_fp8_e4m3* q, float* scale, std::int64_t stride) {
    pdl_enter();
    __shared__ float scratch[32];
    const std::int64_t r0 = static_cast<std::int64_t>(blockIdx.y) * 128;
    const std::int64_t c0 = static_cast<std::int64_t>(blockIdx.x) * 128;
    const std::int64_t nr = rows - r0 < 128 ? rows - r0 : 128;
    const std::int64_t nc = cols - c0 < 128 ? cols - c0 : 128;
    float amax = 0.0f;
    for (std::int64_t i = threadIdx.x; i < nr * nc; i += blockDim.x) {
        amax = fmaxf(amax, fabsf(w[(r0 + i / nc) * cols + c0 + i % nc]));
    }
    for (int o = kWarp / 2; o > 0; o /= 2) {
        amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    }
    __syncthreads();
    if (threadIdx.x % kWarp == 0) {
        scratch[threadIdx.x / kWarp] = amax;
    }
    __syncthreads();
    amax = 0.0f;
    for (int i = 0; i < static_cast<int>(blockDim.x) / kWarp; ++i) {
        amax = fmaxf(amax, scratch[i]);
    }
    const float s = amax > 0.0f ? amax / kFp8Max : 1.0f;
    for (std::int64_t i = threadIdx.x; i < nr * nc; i += blockDim.x) {
        const std::int64_t at = (r0 + i / nc) * cols + c0 + i % nc;
        q[at] = __nv_fp8_e4m3(w[at] / s);
    }
    if (threadIdx.x == 0) {
        scale[blockIdx.y * stride + blockIdx.x] = s;
    }
}

__global__ void dequantize_weight_kernel(const __nv_fp8_e4m3* q, const float* scale,
                                         std::int64_t rows, std::int64_t cols, std::int64_t stride,
                                         float* w) {
    pdl_enter();
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= rows * cols) {
        return;
    }
    const std::int64_t r = i / cols, c = i % cols;
    const float s = scale[(r / 128) * stride + c / 128];
    w[i] = static_cast<float>(q[i]) * s;
}

// One warp per (row, 128-column group); each lane holds four values.
__global__ void quantize_activations_kernel(const float* x, std::int64_t m, int k,
                                            const std::int32_t* starts, int segments,
                                            __nv_fp8_e4m3* q, float* scale) {
    pdl_enter();
    const int lane = threadIdx.x % kWarp;
    const std::int64_t item =
        (static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
    const int groups = (k + 127) / 128;
    if (item >= m * groups) {
        return;
    }
    const std::int64_t row = item / groups;
    const int g = static_cast<int>(item % groups);
    const float* in = x + row * k + g * 128;
    const int n = min(128, k - g * 128);
    float v[4];
    float amax = 0.0f;
    for (int j = 0; j < 4; ++j) {
        const int c = lane + j * kWarp;
        v[j] = c < n ? in[c] : 0.0f;
        amax = fmaxf(amax, fabsf(v[j]));
    }
    for (int o = kWarp / 2; o > 0; o /= 2) {
        amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    }
    const float s = amax > 0.0f ? amax / kFp8Max : 1.0f;
    __nv_fp8_e4m3* out = q + row * k + g * 128;
    for (int j = 0; j < 4; ++j) {
        const int c = lane + j * kWarp;
        if (c < n) {
            out[c] = __nv_fp8_e4m3(v[j] / s);
        }
    }
    if (lane == 0) {
        int lo = 0, hi = segments - 1;  // the segment holding row: last start <= row
        while (lo < hi) {
            const int mid = (lo + hi + 1) / 2;
            if (starts[mid] <= row) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        const std::int64_t first = starts[lo], count = starts[lo + 1] - first;
        scale[first * groups + g * count + (row - first)] = s;
    }
}

// Grid (tokens, hidden / 256): one thread per output value, so that a decode step's single token
// still spreads its 7,168 values over many SMs.
__global__ void moe_combine_kernel(const float* y, const std::int32_t* pos, const float* weight,
                                   int top_k, int hidden, float* out) {
    pdl_enter();
    const int t = blockIdx.x;
    const int d = blockIdx.y * blockDim.x + threadIdx.x;
    if (d >= hidden) {
        return;
    }
    float a = out[static_cast<std::int64_t>(t) * hidden + d];
    for (int k = 0; k < top_k; ++k) {
        const std::int64_t i = static_cast<std::int64_t>(t) * top_k + k;
        a += weight[i] * y[static_cast<std::int64_t>(pos[i]) * hidden + d];
    }
    out[static_cast<std::int64_t>(t) * hidden + d] = a;
}

__device__ std::uint64_t splitmix64_at(std::uint64_t state, std::uint64_t draw) {
    std::uint64_t z = state + draw * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// Pair i of the host generator (model/loader.cpp) uses draws 2i + 1 and 2i + 2: any element can
// be computed alone, so the device makes the same values as the host without a sequential pass.
__global__ void random_normal_kernel(float* out, std::int64_t n, std::uint64_t state, float mean,
                                     float std) {
    pdl_enter();
    const std::int64_t pair = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (2 * pair >= n) {
        return;
    }
    const auto draw = static_cast<std::uint64_t>(2 * pair);
    const double u1 = (static_cast<double>(splitmix64_at(state, draw + 1) >> 11) + 0.5) * 0x1.0p-53;
    const double u2 = static_cast<double>(splitmix64_at(state, draw + 2) >> 11) * 0x1.0p-53;
    const double r = sqrt(-2.0 * log(u1));
    out[2 * pair] = mean + std * static_cast<float>(r * cos(2.0 * M_PI * u2));
    if (2 * pair + 1 < n) {
        out[2 * pair + 1] = mean + std * static_cast<float>(r * sin(2.0 * M_PI * u2));
    }
}

__global__ void to_bf16_kernel(const float* x, std::int64_t n, __nv_bfloat16* y) {
    pdl_enter();
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) {
        y[i] = __float2bfloat16_rn(x[i]);
    }
}

__global__ void from_bf16_kernel(const __nv_bfloat16* x, std::int64_t n, float* y) {
    pdl_enter();
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) {
        y[i] = __bfloat162float(x[i]);
    }
}

// The destination may be memory that a kernel before this one used before it was freed (the
// stream-ordered pool hands it out again), so the writes wait; the reads over PCIe need not.
__global__ void copy_from_host_kernel(const std::byte* src, std::byte* dst, std::int64_t bytes) {
    pdl_allow_next();
    const std::int64_t vecs = aligned16(src, dst) ? bytes / 16 : 0;
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const auto* src4 = reinterpret_cast<const uint4*>(src);
    auto* dst4 = reinterpret_cast<uint4*>(dst);
    uint4 first{};
    if (i < vecs) {
        first = src4[i];
    }
    pdl_wait();
    if (i < vecs) {
        dst4[i] = first;
    }
    for (i += stride; i < vecs; i += stride) {
        dst4[i] = src4[i];
    }
    for (std::int64_t b =
             vecs * 16 + static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
         b < bytes; b += stride) {
        dst[b] = src[b];
    }
}

// blockIdx.x: the row; blockIdx.y: a share of its columns. The id may name a token slot that an
// earlier kernel on this stream wrote.
template <typename T>
__global__ void embed_rows_kernel(const T* table, const std::int32_t* ids,
                                  const std::int32_t* token_slots, int cols, int share,
                                  float* dst) {
    pdl_enter();
    std::int32_t id = ids[blockIdx.x];
    if (id < 0) {
        id = token_slots[-1 - id];
    }
    const int begin = static_cast<int>(blockIdx.y) * share, end = min(cols, begin + share);
    float* out = dst + static_cast<std::int64_t>(blockIdx.x) * cols + begin;
    const T* in = table + static_cast<std::int64_t>(id) * cols + begin;
    const int n = end - begin;
    if constexpr (std::is_same_v<T, __nv_bfloat16>) {
        if (n % 8 == 0 && aligned16(in, out)) {
#pragma unroll 4
            for (int i = threadIdx.x; i < n / 8; i += blockDim.x) {
                const uint4 v = reinterpret_cast<const uint4*>(in)[i];
                const unsigned words[4] = {v.x, v.y, v.z, v.w};
                float f[8];
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    // A BF16 value is the top half of a float's bits.
                    f[2 * j] = __uint_as_float(words[j] << 16);
                    f[2 * j + 1] = __uint_as_float(words[j] & 0xffff0000u);
                }
                reinterpret_cast<float4*>(out)[2 * i] = make_float4(f[0], f[1], f[2], f[3]);
                reinterpret_cast<float4*>(out)[2 * i + 1] = make_float4(f[4], f[5], f[6], f[7]);
            }
            return;
        }
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            out[i] = __bfloat162float(in[i]);
        }
    } else {
        copy_row(in, out, n);
    }
}

}  // namespace

bool launch_rms_norm(const float* x, const float* g, float eps, float* y, std::int64_t rows,
                     int dim, cudaStream_t stream, Fp8Rows fp8, PdlRole role) {
    if (rows == 0) {
        return false;
    }
    const bool vec = dim % 4 == 0 && dim / 4 <= kNormThreads * kNormVectors && aligned16(x, g, y);
    const bool quantize = vec && fp8.x8 != nullptr && dim % kFp8Group == 0;
    if (vec) {
        // The plain form only reads x.
        launch_kernel(rms_norm_vec_kernel<false>, static_cast<unsigned>(rows), kNormThreads, 0,
                      stream, reinterpret_cast<float4*>(const_cast<float*>(x)), nullptr,
                      reinterpret_cast<const float4*>(g), eps, reinterpret_cast<float4*>(y),
                      dim / 4, quantize ? fp8.x8 : nullptr, fp8.xs, role);
    } else {
        // A chained kernel is safe in any place of a group (it waits before it touches memory).
        launch_kernel(rms_norm_kernel, static_cast<unsigned>(rows), 256, 0, stream, x, g, eps, y,
                      dim);
    }
    DS_CUDA_LAUNCH(rms_norm, stream, "[", rows, ", ", dim, "]");
    return quantize;
}

void launch_layer_norm(const float* x, const float* g, const float* b, float eps, float* y,
                       std::int64_t rows, int dim, cudaStream_t stream) {
    if (rows == 0) {
        return;
    }
    launch_kernel(layer_norm_kernel, static_cast<unsigned>(rows), 256, 0, stream, x, g, b, eps, y,
                  dim);
    DS_CUDA_LAUNCH(layer_norm, stream, "[", rows, ", ", dim, "]");
}

void launch_rope(float* x, std::int64_t rows, int num_heads, int head_stride, int offset,
                 int rope_dim, const std::int32_t* positions, const float* inv_freq,
                 float attention_factor, bool interleaved, cudaStream_t stream) {
    const std::int64_t n = rows * num_heads * (rope_dim / 2);
    if (n == 0) {
        return;
    }
    launch_kernel(rope_kernel, blocks_for(n, 256), 256, 0, stream, x, rows, num_heads, head_stride,
                  offset, rope_dim / 2, positions, inv_freq, attention_factor, interleaved);
    DS_CUDA_LAUNCH(rope, stream, "[", rows, ", ", num_heads, " x ", head_stride, "] rope ",
                   rope_dim);
}

void launch_silu_mul(const float* gate, const float* up, float* out, std::int64_t n,
                     cudaStream_t stream) {
    if (n == 0) {
        return;
    }
    launch_kernel(silu_mul_kernel, blocks_for(n, 256), 256, 0, stream, gate, up, out, n);
    DS_CUDA_LAUNCH(silu_mul, stream, n);
}

void launch_add(float* x, const float* y, std::int64_t n, cudaStream_t stream) {
    if (n == 0) {
        return;
    }
    launch_kernel(add_kernel, blocks_for(n, 256), 256, 0, stream, x, y, n);
    DS_CUDA_LAUNCH(add, stream, n);
}

void launch_scale(float* x, float s, std::int64_t n, cudaStream_t stream) {
    if (n == 0) {
        return;
    }
    launch_kernel(scale_kernel, blocks_for(n, 256), 256, 0, stream, x, s, n);
    DS_CUDA_LAUNCH(scale, stream, n);
}

template <typename Index>
void launch_gather_rows(const float* src, const Index* index, std::int64_t n, int cols, float* dst,
                        cudaStream_t stream) {
    if (n == 0) {
        return;
    }
    launch_kernel(gather_rows_kernel<Index>, static_cast<unsigned>(n), 128, 0, stream, src, index,
                  cols, dst);
    DS_CUDA_LAUNCH(gather_rows, stream, n, " x ", cols);
}
template void launch_gather_rows(const float*, const std::int32_t*, std::int64_t, int, float*,
                                 cudaStream_t);
template void launch_gather_rows(const float*, const std::int64_t*, std::int64_t, int, float*,
                                 cudaStream_t);

void launch_scatter_rows(const float* src, const std::int32_t* index, std::int64_t n, int cols,
                         float* dst, cudaStream_t stream) {
    if (n == 0) {
        return;
    }
    launch_kernel(scatter_rows_kernel, static_cast<unsigned>(n), 128, 0, stream, src, index, cols,
                  dst);
    DS_CUDA_LAUNCH(scatter_rows, stream, n, " x ", cols);
}

void launch_indexer_scores(const float* q, const float* w, const float* index_k,
                           const std::int32_t* q_row, const std::int32_t* keys,
                           const std::int32_t* key_offset, const std::int32_t* key_count, int rows,
                           int max_keys, int num_heads, int head_dim, float scale, std::int64_t ld,
                           float* score, cudaStream_t stream) {
    if (rows == 0 || max_keys == 0) {
        return;
    }
    const auto smem = static_cast<std::size_t>(num_heads * head_dim + num_heads) * sizeof(float);
    // DeepSeek-V3.2's 64 heads (and the test presets' 16) take the thread-per-key kernel; 128
    // threads a block, so that a single row's keys still spread over many SMs.
    const bool lanes = (num_heads == 64 || num_heads == 16) && head_dim % kIndexerChunk == 0 &&
                       smem <= 48 * 1024 && aligned16(q, index_k);
    if (lanes) {
        constexpr int threads = 128;
        const dim3 grid(static_cast<unsigned>(std::min((max_keys + threads - 1) / threads, 1024)),
                        static_cast<unsigned>(rows));
        auto* kernel =
            num_heads == 64 ? indexer_scores_lanes_kernel<64> : indexer_scores_lanes_kernel<16>;
        launch_kernel(kernel, grid, threads, smem, stream, q, w, index_k, q_row, keys, key_offset,
                      key_count, head_dim, scale, ld, score);
        DS_CUDA_LAUNCH(indexer_scores_lanes, stream, rows, " rows x ", max_keys, " keys, ",
                       num_heads, " heads x ", head_dim);
        return;
    }
    constexpr int threads = 256, warps = threads / kWarp;
    const dim3 grid(static_cast<unsigned>(std::min((max_keys + warps - 1) / warps, 1024)),
                    static_cast<unsigned>(rows));
    launch_kernel(indexer_scores_kernel, grid, threads, smem, stream, q, w, index_k, q_row, keys,
                  key_offset, key_count, num_heads, head_dim, scale, ld, score);
    DS_CUDA_LAUNCH(indexer_scores, stream, rows, " rows x ", max_keys, " keys, ", num_heads,
                   " heads x ", head_dim);
}

void launch_mla_attend(const float* q_lat, const float* q, CacheFormat format, const void* latent,
                       const void* k_rope, const std::int32_t* keys, const std::int32_t* key_offset,
                       const std::int32_t* key_count, const MlaShape& shape, float* o_lat,
                       cudaStream_t stream) {
    if (shape.tokens == 0) {
        return;
    }
    const auto smem =
        static_cast<std::size_t>(2 * shape.lora + shape.rope + kMlaChunk) * sizeof(float);
    const dim3 grid(static_cast<unsigned>(shape.tokens), static_cast<unsigned>(shape.heads));
    if (format == CacheFormat::bf16) {
        launch_kernel(mla_attend_kernel<__nv_bfloat16>, grid, 128, smem, stream, q_lat, q,
                      static_cast<const __nv_bfloat16*>(latent),
                      static_cast<const __nv_bfloat16*>(k_rope), keys, key_offset, key_count, shape,
                      o_lat);
    } else {
        launch_kernel(mla_attend_kernel<float>, grid, 128, smem, stream, q_lat, q,
                      static_cast<const float*>(latent), static_cast<const float*>(k_rope), keys,
                      key_offset, key_count, shape, o_lat);
    }
    DS_CUDA_LAUNCH(mla_attend, stream, shape.tokens, " tokens x ", shape.heads, " heads, lora ",
                   shape.lora, " rope ", shape.rope);
}

std::int64_t weight_scale_stride(std::int64_t cols) {
    return ((cols + 127) / 128 + 3) / 4 * 4;
}

void launch_quantize_weight(const float* w, std::int64_t rows, std::int64_t cols, void* q,
                            float* scale, cudaStream_t stream) {
    if (rows == 0 || cols == 0) {
        return;
    }
    const dim3 grid(static_cast<unsigned>((cols + 127) / 128),
                    static_cast<unsigned>((rows + 127) / 128));
    launch_kernel(quantize_weight_kernel, grid, 256, 0, stream, w, rows, cols,
                  static_cast<__nv_fp8_e4m3*>(q), scale, weight_scale_stride(cols));
    DS_CUDA_LAUNCH(quantize_weight, stream, "[", rows, ", ", cols, "]");
}

void launch_dequantize_weight(const void* q, const float* scale, std::int64_t rows,
                              std::int64_t cols, float* w, cudaStream_t stream) {
    if (rows == 0 || cols == 0) {
        return;
    }
    launch_kernel(dequantize_weight_kernel, blocks_for(rows * cols, 256), 256, 0, stream,
                  static_cast<const __nv_fp8_e4m3*>(q), scale, rows, cols,
                  weight_scale_stride(cols), w);
    DS_CUDA_LAUNCH(dequantize_weight, stream, "[", rows, ", ", cols, "]");
}

void launch_quantize_activations(const float* x, std::int64_t m, int k, const std::int32_t* starts,
                                 int segments, void* q, float* scale, cudaStream_t stream) {
    if (m == 0) {
        return;
    }
    const std::int64_t warps = m * ((k + 127) / 128);
    launch_kernel(quantize_activations_kernel, blocks_for(warps * kWarp, 256), 256, 0, stream, x, m,
                  k, starts, segments, static_cast<__nv_fp8_e4m3*>(q), scale);
    DS_CUDA_LAUNCH(quantize_activations, stream, "[", m, ", ", k, "] in ", segments, " segments");
}

void launch_moe_combine(const float* y, const std::int32_t* pos, const float* weight, int tokens,
                        int top_k, int hidden, float* out, cudaStream_t stream) {
    if (tokens == 0) {
        return;
    }
    const dim3 grid(static_cast<unsigned>(tokens), blocks_for(hidden, 256));
    launch_kernel(moe_combine_kernel, grid, 256, 0, stream, y, pos, weight, top_k, hidden, out);
    DS_CUDA_LAUNCH(moe_combine, stream, tokens, " x ", top_k, " x ", hidden);
}

void launch_random_normal(float* out, std::int64_t n, std::uint64_t state, float mean, float std,
                          cudaStream_t stream) {
    if (n == 0) {
        return;
    }
    launch_kernel(random_normal_kernel, blocks_for((n + 1) / 2, 256), 256, 0, stream, out, n, state,
                  mean, std);
    DS_CUDA_LAUNCH(random_normal, stream, n);
}

void launch_to_bf16(const float* x, std::int64_t n, void* y, cudaStream_t stream) {
    if (n == 0) {
        return;
    }
    launch_kernel(to_bf16_kernel, blocks_for(n, 256), 256, 0, stream, x, n,
                  static_cast<__nv_bfloat16*>(y));
    DS_CUDA_LAUNCH(to_bf16, stream, n);
}

void launch_from_bf16(const void* x, std::int64_t n, float* y, cudaStream_t stream) {
    if (n == 0) {
        return;
    }
    launch_kernel(from_bf16_kernel, blocks_for(n, 256), 256, 0, stream,
                  static_cast<const __nv_bfloat16*>(x), n, y);
    DS_CUDA_LAUNCH(from_bf16, stream, n);
}

void launch_embed_rows(const void* table, bool bf16, const std::int32_t* ids,
                       const std::int32_t* token_slots, std::int64_t n, int cols, float* dst,
                       cudaStream_t stream) {
    if (n == 0) {
        return;
    }
    // A row of 7,168 values in shares of 1,024 (one 16-byte load per thread of a block of 128
    // for BF16): one block alone would wait on seven rounds of loads in a row.
    constexpr int kShare = 1024;
    const dim3 grid(static_cast<unsigned>(n), static_cast<unsigned>((cols + kShare - 1) / kShare));
    if (bf16) {
        launch_kernel(embed_rows_kernel<__nv_bfloat16>, grid, 128, 0, stream,
                      static_cast<const __nv_bfloat16*>(table), ids, token_slots, cols, kShare,
                      dst);
    } else {
        launch_kernel(embed_rows_kernel<float>, grid, 128, 0, stream,
                      static_cast<const float*>(table), ids, token_slots, cols, kShare, dst);
    }
    DS_CUDA_LAUNCH(embed_rows, stream, n, " x ", cols);
}

void launch_copy_from_host(const std::byte* src, void* dst, std::size_t bytes,
                           cudaStream_t stream) {
    if (bytes == 0) {
        return;
    }
    const auto vecs = static_cast<std::int64_t>(bytes / 16);
    const auto blocks = static_cast<unsigned>(std::clamp<std::int64_t>((vecs + 255) / 256, 1, 132));
    launch_kernel(copy_from_host_kernel, blocks, 256, 0, stream, src, static_cast<std::byte*>(dst),
                  static_cast<std::int64_t>(bytes));
    DS_CUDA_LAUNCH(copy_from_host, stream, bytes, " bytes");
}

void launch_silu_mul_rows(const float* gate_up, int width, std::int64_t rows, float* out,
                          cudaStream_t stream) {
    const std::int64_t n = rows * width;
    if (n == 0) {
        return;
    }
    launch_kernel(silu_mul_rows_kernel, blocks_for(n, 256), 256, 0, stream, gate_up, width, n, out);
    DS_CUDA_LAUNCH(silu_mul_rows, stream, rows, " x ", width);
}

NormLaunch launch_add_rms_norm(float* x, const float* y, const float* g, float eps, float* h,
                               std::int64_t rows, int dim, cudaStream_t stream, Fp8Rows fp8) {
    if (dim % 4 != 0 || dim / 4 > kNormThreads * kNormVectors || !aligned16(x, y, g, h)) {
        return NormLaunch::unsupported;
    }
    if (rows == 0) {
        return NormLaunch::done;
    }
    const bool quantize = fp8.x8 != nullptr && dim % kFp8Group == 0;
    launch_kernel(rms_norm_vec_kernel<true>, static_cast<unsigned>(rows), kNormThreads, 0, stream,
                  reinterpret_cast<float4*>(x), reinterpret_cast<const float4*>(y),
                  reinterpret_cast<const float4*>(g), eps, reinterpret_cast<float4*>(h), dim / 4,
                  quantize ? fp8.x8 : nullptr, fp8.xs, PdlRole::chained);
    DS_CUDA_LAUNCH(add_rms_norm, stream, "[", rows, ", ", dim, "]");
    return quantize ? NormLaunch::quantized : NormLaunch::done;
}

void launch_store_index_key(const float* k, std::int64_t tokens, int dim, const float* g,
                            const float* b, float eps, int rope_dim, const std::int32_t* positions,
                            const float* inv_freq, float attention_factor,
                            const std::int32_t* slots, float* index_k, cudaStream_t stream,
                            PdlRole role) {
    DS_ASSERT(dim >= 1 && dim <= kMaxIndexKeyDim && rope_dim % 2 == 0 && rope_dim <= dim, dim, " ",
              rope_dim);
    if (tokens == 0) {
        return;
    }
    const int threads = (dim + 31) / 32 * 32;
    launch_kernel(store_index_key_kernel, static_cast<unsigned>(tokens), threads, 0, stream, k, dim,
                  g, b, eps, rope_dim, positions, inv_freq, attention_factor, slots, index_k, role);
    DS_CUDA_LAUNCH(store_index_key, stream, tokens, " tokens, dim ", dim, " rope ", rope_dim);
}

void launch_store_latent(const float* kv, std::int64_t tokens, int lora, int rope_dim,
                         const float* g, float eps, const std::int32_t* positions,
                         const float* inv_freq, float attention_factor, const std::int32_t* slots,
                         CacheFormat format, void* latent, void* k_rope, cudaStream_t stream,
                         PdlRole role) {
    if (tokens == 0) {
        return;
    }
    if (format == CacheFormat::bf16) {
        launch_kernel(store_latent_kernel<__nv_bfloat16>, static_cast<unsigned>(tokens), 256, 0,
                      stream, kv, lora, rope_dim, g, eps, positions, inv_freq, attention_factor,
                      slots, static_cast<__nv_bfloat16*>(latent),
                      static_cast<__nv_bfloat16*>(k_rope), role);
    } else {
        launch_kernel(store_latent_kernel<float>, static_cast<unsigned>(tokens), 256, 0, stream, kv,
                      lora, rope_dim, g, eps, positions, inv_freq, attention_factor, slots,
                      static_cast<float*>(latent), static_cast<float*>(k_rope), role);
    }
    DS_CUDA_LAUNCH(store_latent, stream, tokens, " tokens, lora ", lora, " rope ", rope_dim);
}

}  // namespace dsserve::backend::cuda
