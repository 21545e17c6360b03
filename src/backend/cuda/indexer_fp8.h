// The lightning indexer in FP8 (model/index_fp8.h): index keys in the cache as e4m3 rows with one
// power-of-two scale each, queries rotated and quantized per head the same way, and the scores as
// e4m3 tensor-core products (mma.sync m16n8k32) of a tile of keys against every head of a query
// row. Every pointer is device memory; each launcher enqueues on `stream` and checks the launch.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "backend/cuda/kernels.h"

namespace dsserve::backend::cuda {

// An FP8 key table: k8 [slots][dim] e4m3, scale [slots].
struct Fp8KeyTable {
    unsigned char* k8 = nullptr;
    float* scale = nullptr;
};

// Head widths the FP8 kernels take (model::fp8_index_supported): 32, 64 or 128.
bool indexer_fp8_supports(int head_dim);

// The cache write into an FP8 table: LayerNorm(k) * g + b, half-split RoPE over the first
// rope_dim dims, the rotation (norm = model::hadamard_norm(dim)), then e4m3 at the row's scale, to
// slot slots[t]. One warp a token.
void launch_store_index_key_fp8(const float* k, std::int64_t tokens, int dim, const float* g,
                                const float* b, float eps, int rope_dim,
                                const std::int32_t* positions, const float* inv_freq,
                                float attention_factor, float norm, const std::int32_t* slots,
                                Fp8KeyTable table, cudaStream_t stream, PdlRole role);

// Query rows q_row[r] (of q [T, heads * dim] and w [T, heads]): each head's row rotated and
// quantized into q8 [rows][heads][dim], and wq[r, h] = w[q_row[r], h] * (its scale) * scale, the
// factor its ReLU'd product is weighted by.
void launch_indexer_quantize_q(const float* q, const float* w, const std::int32_t* q_row, int rows,
                               int heads, int dim, float norm, float scale, unsigned char* q8,
                               float* wq, cudaStream_t stream);

// Scores, as launch_indexer_scores (kernels.h) over FP8 keys: score[r * ld + p] =
// key_scale(p) * sum_h wq[r, h] ReLU(q8[r, h] . k8(p)) for p < key_count[r], the keys at cache
// slots keys[key_offset[r] + p]. Rows come in groups that share their key list (rows of one
// sequence): group i is rows [group_first[i], group_first[i + 1]), at most kIndexerGroupRows of
// them, each seeing a prefix of the group's list. max_keys bounds every key_count.
constexpr int kIndexerGroupRows = 16;
void launch_indexer_scores_fp8(const unsigned char* q8, const float* wq, Fp8KeyTable table,
                               const std::int32_t* keys, const std::int32_t* key_offset,
                               const std::int32_t* key_count, const std::int32_t* group_first,
                               int groups, int max_keys, int heads, int dim, std::int64_t ld,
                               float* score, cudaStream_t stream);

// Dequantized rows: out[r, c] = e4m3(k8[r, c]) * scale[r] (tests, and to_host).
void launch_dequantize_key_rows(Fp8KeyTable table, std::int64_t rows, int dim, float* out,
                                cudaStream_t stream);

}  // namespace dsserve::backend::cuda
