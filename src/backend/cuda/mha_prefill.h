// MLA without absorption, for prefill: keys and values expanded per head from the latent
// (k_nope, v = c_KV W_UK^T, c_KV W_UV^T, one product over every visible position) and a plain
// causal multi-head attention over them, q . [k_nope | k_R] then p . v. For a step whose new
// tokens are most of what they see this costs less than the absorbed form, whose scores and
// outputs run over the 576 and 512 latent dims of every head instead of 192 and 128 (DeepSeek-V2
// §2.1.2; SGLang and vLLM prefill short prompts this way too). Attention on tensor cores in
// bfloat16 (queries, keys, values and probabilities rounded, sums in float32), flash-attention
// style: a block takes 64 query rows of one sequence and one head and walks its keys 64 at a time
// with an online softmax. Every pointer is device memory; each launcher enqueues on `stream`.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace dsserve::backend::cuda {

// The shape the kernel takes: DeepSeek's nope 128, rope 64, v 128.
bool mha_prefill_supports(int nope, int rope, int v);

// 64 query rows of one sequence: rows [q_row, q_row + rows) of q and out, at positions q_pos,
// q_pos + 1, ...; that sequence's key at position p is row key_row + p of kv and k_rope.
struct MhaTile {
    std::int32_t q_row, rows, q_pos, key_row;
};
constexpr int kMhaTileRows = 64;

// dst[i] = src[index[i]], rows of row_bytes (a multiple of 16) bytes.
void launch_gather_rows_bytes(const void* src, int row_bytes, const std::int32_t* index,
                              std::int64_t n, void* dst, cudaStream_t stream);

// out[t, h * 128 + d] = sum_p softmax_p(q[t, h] . [kv[p, h, :128] | k_rope[p]] scale) kv[p, h,
// 128 + d] over the causal keys p <= pos(t) of t's sequence. q: [T, heads * 192] float32;
// kv: [keys, heads * 256] bfloat16 ([k_nope | v] a head); k_rope: [keys, 64] bfloat16.
void launch_mha_prefill(const float* q, const void* kv, const void* k_rope, const MhaTile* tiles,
                        int num_tiles, int heads, float scale, float* out, cudaStream_t stream);

}  // namespace dsserve::backend::cuda
