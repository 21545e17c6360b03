// Launchers for the CUDA backend's own kernels (kernels.cu). Every pointer is device memory and
// every tensor row-major float32; each launcher enqueues on `stream` and checks the launch.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace dsserve::backend::cuda {

// How a kernel orders itself against the kernel before it (launch.cuh): chained waits for it
// before touching memory. A group of kernels independent of one another (model::Ops::
// begin_independent) runs at once: its first kernel waits before it lets the next one launch, so
// that every member starts with the work before the group complete; members let the next launch
// at once and wait only at their end, so that the group completes in order.
enum class PdlRole : int { chained, group_first, group_member };

// Where a norm may also write its output rows in block FP8 (fp8_quant.cuh) for the FP8 GEMV that
// reads them next, saving that product its quantizer launch: x8 [rows][dim] bytes, xs
// [rows][dim / 128] scales. Taken for widths that are a multiple of 128.
struct Fp8Rows {
    unsigned char* x8 = nullptr;
    float* xs = nullptr;
};
// y = RMSNorm(x) * g. True when the FP8 rows were written too.
bool launch_rms_norm(const float* x, const float* g, float eps, float* y, std::int64_t rows,
                     int dim, cudaStream_t stream, Fp8Rows fp8 = {},
                     PdlRole role = PdlRole::chained);
// x += y; h = RMSNorm(x) * g: unsupported (nothing launched) for shapes the fused kernel does
// not take, quantized when the FP8 rows were written too.
enum class NormLaunch : std::uint8_t { unsupported, done, quantized };
NormLaunch launch_add_rms_norm(float* x, const float* y, const float* g, float eps, float* h,
                               std::int64_t rows, int dim, cudaStream_t stream, Fp8Rows fp8 = {});
// The indexer's cache write (model::Ops::store_index_key): LayerNorm, half-split RoPE over the
// first rope_dim dims, then the row to index_k[slots[t]]; dim at most kMaxIndexKeyDim.
constexpr int kMaxIndexKeyDim = 1024;
void launch_store_index_key(const float* k, std::int64_t tokens, int dim, const float* g,
                            const float* b, float eps, int rope_dim, const std::int32_t* positions,
                            const float* inv_freq, float attention_factor,
                            const std::int32_t* slots, float* index_k, cudaStream_t stream,
                            PdlRole role = PdlRole::chained);
// How the MLA cache tables (latent and k_rope) hold their values: float32, or bfloat16 rounded to
// nearest even at the write (--kv-cache-dtype bf16), as the tensor-core decode reads them.
enum class CacheFormat : std::uint8_t { f32, bf16 };
// MLA's cache write (model::Ops::store_latent): kv rows [c | k], latent / k_rope cache tables.
void launch_store_latent(const float* kv, std::int64_t tokens, int lora, int rope_dim,
                         const float* g, float eps, const std::int32_t* positions,
                         const float* inv_freq, float attention_factor, const std::int32_t* slots,
                         CacheFormat format, void* latent, void* k_rope, cudaStream_t stream,
                         PdlRole role = PdlRole::chained);
void launch_layer_norm(const float* x, const float* g, const float* b, float eps, float* y,
                       std::int64_t rows, int dim, cudaStream_t stream);
// Rotates the first rope_dim dims after `offset` of every head of every row; positions and
// inv_freq are device arrays.
void launch_rope(float* x, std::int64_t rows, int num_heads, int head_stride, int offset,
                 int rope_dim, const std::int32_t* positions, const float* inv_freq,
                 float attention_factor, bool interleaved, cudaStream_t stream);
void launch_silu_mul(const float* gate, const float* up, float* out, std::int64_t n,
                     cudaStream_t stream);
// out[r] = silu(gate_up[r, :width]) * gate_up[r, width:] for rows of [gate | up].
void launch_silu_mul_rows(const float* gate_up, int width, std::int64_t rows, float* out,
                          cudaStream_t stream);
void launch_add(float* x, const float* y, std::int64_t n, cudaStream_t stream);
void launch_scale(float* x, float s, std::int64_t n, cudaStream_t stream);
// dst[i] = src[index[i]] (rows of `cols` floats), or zeros where index[i] < 0; Index is
// std::int32_t or std::int64_t.
template <typename Index>
void launch_gather_rows(const float* src, const Index* index, std::int64_t n, int cols, float* dst,
                        cudaStream_t stream);
// dst[index[i]] = src[i]
void launch_scatter_rows(const float* src, const std::int32_t* index, std::int64_t n, int cols,
                         float* dst, cudaStream_t stream);

// The lightning indexer's scores for `rows` query rows: row r sees key_count[r] keys whose cache
// slots start at keys + key_offset[r]; score[r * ld + p] = sum_h w[r, h] ReLU(q[r, h] . k_p scale).
// q_row[r] is the query row (into q and w) of score row r.
void launch_indexer_scores(const float* q, const float* w, const float* index_k,
                           const std::int32_t* q_row, const std::int32_t* keys,
                           const std::int32_t* key_offset, const std::int32_t* key_count, int rows,
                           int max_keys, int num_heads, int head_dim, float scale, std::int64_t ld,
                           float* score, cudaStream_t stream);

// Absorbed MLA over the latent cache: for token t and head h, softmax over t's keys of
// (q_lat[t, h] . c_s + q_rope[t, h] . kR_s) scale, then o_lat[t, h] = sum p_s c_s.
struct MlaShape {
    int tokens, heads, lora, rope, nope, qk;
    float scale;
};
void launch_mla_attend(const float* q_lat, const float* q, CacheFormat format, const void* latent,
                       const void* k_rope, const std::int32_t* keys, const std::int32_t* key_offset,
                       const std::int32_t* key_count, const MlaShape& shape, float* o_lat,
                       cudaStream_t stream);

// Block FP8 (e4m3 with float32 scales), laid out as cuBLASLt's block-scaled matmul reads it on
// Hopper (established by measurement against a host emulation; see cuda_ops.cpp):
// - a weight [rows, cols] has one scale per 128x128 block, stored [ceil(rows / 128)][stride]
//   with stride = ceil(cols / 128) rounded up to a multiple of 4;
// - activations [m, k] have one scale per row and 128 columns. Rows fall in segments (one per
//   expert, or a single one) whose lengths are multiples of 4; segment s spans rows
//   [starts[s], starts[s + 1]) and stores its scales from starts[s] * ceil(k / 128) on, as
//   [ceil(k / 128)][rows of s], row fastest. Only rows < m are written.
std::int64_t weight_scale_stride(std::int64_t cols);
void launch_quantize_weight(const float* w, std::int64_t rows, std::int64_t cols, void* q,
                            float* scale, cudaStream_t stream);
void launch_quantize_activations(const float* x, std::int64_t m, int k, const std::int32_t* starts,
                                 int segments, void* q, float* scale, cudaStream_t stream);
// Dequantizes a block-FP8 weight back to float32 (tests, and to_host).
void launch_dequantize_weight(const void* q, const float* scale, std::int64_t rows,
                              std::int64_t cols, float* w, cudaStream_t stream);

// out[t] += sum_k weight[t, k] y[pos[t, k]] over k in order, for top_k routed experts.
void launch_moe_combine(const float* y, const std::int32_t* pos, const float* weight, int tokens,
                        int top_k, int hidden, float* out, cudaStream_t stream);

// Normal samples mean + std * N(0, 1), the same values as the host's dummy-weight generator
// (model/loader.cpp) started from `state`, up to the last bit of the double-precision libm calls.
void launch_random_normal(float* out, std::int64_t n, std::uint64_t state, float mean, float std,
                          cudaStream_t stream);
// Round to nearest even BF16, and back.
void launch_to_bf16(const float* x, std::int64_t n, void* y, cudaStream_t stream);
void launch_from_bf16(const void* x, std::int64_t n, float* y, cudaStream_t stream);
// dst[0, bytes) = src[0, bytes), where src is pinned host memory mapped for the device: a host
// array's upload as a kernel, which (unlike a copy) keeps the chain of programmatic dependent
// launches. It reads before waiting for the kernel before it and writes after.
void launch_copy_from_host(const std::byte* src, void* dst, std::size_t bytes, cudaStream_t stream);

// The embedding: dst[i] = float(table[ids[i]]) for a float32 or BF16 table, where an id
// -(1 + s) reads its token from token_slots[s] (model::Ops::pick_tokens_async).
void launch_embed_rows(const void* table, bool bf16, const std::int32_t* ids,
                       const std::int32_t* token_slots, std::int64_t n, int cols, float* dst,
                       cudaStream_t stream);

}  // namespace dsserve::backend::cuda
