// The CUDA backend's kernels, in float32. They mirror backend/cpu op for op; the reductions run
// as trees instead of left to right, so results agree to rounding, not bit for bit.
#include <cuda_fp8.h>

#include <cfloat>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

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

__global__ void layer_norm_kernel(const float* x, const float* g, const float* b, float eps,
                                  float* y, int dim) {
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
    const std::int64_t item = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (item >= rows * num_heads * half) {
        return;
    }
    const int i = static_cast<int>(item % half);
    const int h = static_cast<int>((item / half) % num_heads);
    const std::int64_t r = item / (static_cast<std::int64_t>(half) * num_heads);
    const float angle = static_cast<float>(positions[r]) * inv_freq[i];
    const float c = cosf(angle) * attention_factor, s = sinf(angle) * attention_factor;
    float* v =
        x + r * num_heads * head_stride + static_cast<std::int64_t>(h) * head_stride + offset;
    float* a = interleaved ? v + 2 * i : v + i;
    float* b = interleaved ? v + 2 * i + 1 : v + i + half;
    const float x0 = *a, x1 = *b;
    *a = x0 * c - x1 * s;
    *b = x1 * c + x0 * s;
}

__global__ void silu_mul_kernel(const float* gate, const float* up, float* out, std::int64_t n) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) {
        const float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

__global__ void add_kernel(float* x, const float* y, std::int64_t n) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) {
        x[i] += y[i];
    }
}

__global__ void scale_kernel(float* x, float s, std::int64_t n) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) {
        x[i] *= s;
    }
}

template <typename Index>
__global__ void gather_rows_kernel(const float* src, const Index* index, int cols, float* dst) {
    const Index from = index[blockIdx.x];
    float* out = dst + static_cast<std::int64_t>(blockIdx.x) * cols;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        out[i] = from < 0 ? 0.0f : src[static_cast<std::int64_t>(from) * cols + i];
    }
}

__global__ void scatter_rows_kernel(const float* src, const std::int32_t* index, int cols,
                                    float* dst) {
    const float* in = src + static_cast<std::int64_t>(blockIdx.x) * cols;
    float* out = dst + static_cast<std::int64_t>(index[blockIdx.x]) * cols;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        out[i] = in[i];
    }
}

// Grid (key blocks, rows). The block keeps its query row in shared memory; each warp scores one
// key at a time, lanes splitting the head dimension.
__global__ void indexer_scores_kernel(const float* q, const float* w, const float* index_k,
                                      const std::int32_t* q_row, const std::int32_t* keys,
                                      const std::int32_t* key_offset, const std::int32_t* key_count,
                                      int num_heads, int head_dim, float scale, std::int64_t ld,
                                      float* score) {
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

constexpr int kMlaChunk = 32;

// One block per (token, head): an online softmax over the token's keys in chunks, the output
// accumulated in shared memory. Warps score keys (lanes split the dims); then every thread owns
// a set of latent dims and adds the chunk's weighted rows.
__global__ void mla_attend_kernel(const float* q_lat, const float* q, const float* latent,
                                  const float* k_rope, const std::int32_t* keys,
                                  const std::int32_t* key_offset, const std::int32_t* key_count,
                                  MlaShape s, float* o_lat) {
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
            const float* c = latent + static_cast<std::int64_t>(slot) * s.lora;
            const float* kr = k_rope + static_cast<std::int64_t>(slot) * s.rope;
            float dot = 0.0f;
            for (int d = lane; d < s.lora; d += kWarp) {
                dot += qs[d] * c[d];
            }
            for (int d = lane; d < s.rope; d += kWarp) {
                dot += qs[s.lora + d] * kr[d];
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
                a += p[j] * latent[static_cast<std::int64_t>(chunk_slot[j]) * s.lora + d];
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

__global__ void moe_combine_kernel(const float* y, const std::int32_t* pos, const float* weight,
                                   int top_k, int hidden, float* out) {
    const int t = blockIdx.x;
    for (int d = threadIdx.x; d < hidden; d += blockDim.x) {
        float a = out[static_cast<std::int64_t>(t) * hidden + d];
        for (int k = 0; k < top_k; ++k) {
            const std::int64_t i = static_cast<std::int64_t>(t) * top_k + k;
            a += weight[i] * y[static_cast<std::int64_t>(pos[i]) * hidden + d];
        }
        out[static_cast<std::int64_t>(t) * hidden + d] = a;
    }
}

}  // namespace

void launch_rms_norm(const float* x, const float* g, float eps, float* y, std::int64_t rows,
                     int dim, cudaStream_t stream) {
    if (rows == 0) {
        return;
    }
    rms_norm_kernel<<<static_cast<unsigned>(rows), 256, 0, stream>>>(x, g, eps, y, dim);
    DS_CUDA_LAUNCH(rms_norm, stream, "[", rows, ", ", dim, "]");
}

void launch_layer_norm(const float* x, const float* g, const float* b, float eps, float* y,
                       std::int64_t rows, int dim, cudaStream_t stream) {
    if (rows == 0) {
        return;
    }
    layer_norm_kernel<<<static_cast<unsigned>(rows), 256, 0, stream>>>(x, g, b, eps, y, dim);
    DS_CUDA_LAUNCH(layer_norm, stream, "[", rows, ", ", dim, "]");
}

void launch_rope(float* x, std::int64_t rows, int num_heads, int head_stride, int offset,
                 int rope_dim, const std::int32_t* positions, const float* inv_freq,
                 float attention_factor, bool interleaved, cudaStream_t stream) {
    const std::int64_t n = rows * num_heads * (rope_dim / 2);
    if (n == 0) {
        return;
    }
    rope_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(x, rows, num_heads, head_stride, offset,
                                                        rope_dim / 2, positions, inv_freq,
                                                        attention_factor, interleaved);
    DS_CUDA_LAUNCH(rope, stream, "[", rows, ", ", num_heads, " x ", head_stride, "] rope ",
                   rope_dim);
}

void launch_silu_mul(const float* gate, const float* up, float* out, std::int64_t n,
                     cudaStream_t stream) {
    if (n == 0) {
        return;
    }
    silu_mul_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(gate, up, out, n);
    DS_CUDA_LAUNCH(silu_mul, stream, n);
}

void launch_add(float* x, const float* y, std::int64_t n, cudaStream_t stream) {
    if (n == 0) {
        return;
    }
    add_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(x, y, n);
    DS_CUDA_LAUNCH(add, stream, n);
}

void launch_scale(float* x, float s, std::int64_t n, cudaStream_t stream) {
    if (n == 0) {
        return;
    }
    scale_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(x, s, n);
    DS_CUDA_LAUNCH(scale, stream, n);
}

void launch_gather_rows(const float* src, const std::int32_t* index, std::int64_t n, int cols,
                        float* dst, cudaStream_t stream) {
    if (n == 0) {
        return;
    }
    gather_rows_kernel<<<static_cast<unsigned>(n), 128, 0, stream>>>(src, index, cols, dst);
    DS_CUDA_LAUNCH(gather_rows, stream, n, " x ", cols);
}

void launch_gather_rows(const float* src, const std::int64_t* index, std::int64_t n, int cols,
                        float* dst, cudaStream_t stream) {
    if (n == 0) {
        return;
    }
    gather_rows_kernel<<<static_cast<unsigned>(n), 128, 0, stream>>>(src, index, cols, dst);
    DS_CUDA_LAUNCH(gather_rows, stream, n, " x ", cols);
}

void launch_scatter_rows(const float* src, const std::int32_t* index, std::int64_t n, int cols,
                         float* dst, cudaStream_t stream) {
    if (n == 0) {
        return;
    }
    scatter_rows_kernel<<<static_cast<unsigned>(n), 128, 0, stream>>>(src, index, cols, dst);
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
    constexpr int threads = 256, warps = threads / kWarp;
    const auto smem = static_cast<std::size_t>(num_heads * head_dim + num_heads) * sizeof(float);
    const dim3 grid(static_cast<unsigned>(std::min((max_keys + warps - 1) / warps, 1024)),
                    static_cast<unsigned>(rows));
    indexer_scores_kernel<<<grid, threads, smem, stream>>>(
        q, w, index_k, q_row, keys, key_offset, key_count, num_heads, head_dim, scale, ld, score);
    DS_CUDA_LAUNCH(indexer_scores, stream, rows, " rows x ", max_keys, " keys, ", num_heads,
                   " heads x ", head_dim);
}

void launch_mla_attend(const float* q_lat, const float* q, const float* latent, const float* k_rope,
                       const std::int32_t* keys, const std::int32_t* key_offset,
                       const std::int32_t* key_count, const MlaShape& shape, float* o_lat,
                       cudaStream_t stream) {
    if (shape.tokens == 0) {
        return;
    }
    const auto smem =
        static_cast<std::size_t>(2 * shape.lora + shape.rope + kMlaChunk) * sizeof(float);
    const dim3 grid(static_cast<unsigned>(shape.tokens), static_cast<unsigned>(shape.heads));
    mla_attend_kernel<<<grid, 128, smem, stream>>>(q_lat, q, latent, k_rope, keys, key_offset,
                                                   key_count, shape, o_lat);
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
    quantize_weight_kernel<<<grid, 256, 0, stream>>>(w, rows, cols, static_cast<__nv_fp8_e4m3*>(q),
                                                     scale, weight_scale_stride(cols));
    DS_CUDA_LAUNCH(quantize_weight, stream, "[", rows, ", ", cols, "]");
}

void launch_dequantize_weight(const void* q, const float* scale, std::int64_t rows,
                              std::int64_t cols, float* w, cudaStream_t stream) {
    if (rows == 0 || cols == 0) {
        return;
    }
    dequantize_weight_kernel<<<blocks_for(rows * cols, 256), 256, 0, stream>>>(
        static_cast<const __nv_fp8_e4m3*>(q), scale, rows, cols, weight_scale_stride(cols), w);
    DS_CUDA_LAUNCH(dequantize_weight, stream, "[", rows, ", ", cols, "]");
}

void launch_quantize_activations(const float* x, std::int64_t m, int k, const std::int32_t* starts,
                                 int segments, void* q, float* scale, cudaStream_t stream) {
    if (m == 0) {
        return;
    }
    const std::int64_t warps = m * ((k + 127) / 128);
    quantize_activations_kernel<<<blocks_for(warps * kWarp, 256), 256, 0, stream>>>(
        x, m, k, starts, segments, static_cast<__nv_fp8_e4m3*>(q), scale);
    DS_CUDA_LAUNCH(quantize_activations, stream, "[", m, ", ", k, "] in ", segments, " segments");
}

void launch_moe_combine(const float* y, const std::int32_t* pos, const float* weight, int tokens,
                        int top_k, int hidden, float* out, cudaStream_t stream) {
    if (tokens == 0) {
        return;
    }
    moe_combine_kernel<<<static_cast<unsigned>(tokens), 256, 0, stream>>>(y, pos, weight, top_k,
                                                                          hidden, out);
    DS_CUDA_LAUNCH(moe_combine, stream, tokens, " x ", top_k, " x ", hidden);
}

}  // namespace dsserve::backend::cuda
