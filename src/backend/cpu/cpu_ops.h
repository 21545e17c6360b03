// The CPU backend: every op in plain loops over float32, matrix products through OpenBLAS,
// parallel over a thread pool. It is the reference the other backends are checked against.
#pragma once

#include "core/thread_pool.h"
#include "model/ops.h"

namespace dsserve::backend::cpu {

class CpuOps final : public model::Ops {
public:
    explicit CpuOps(std::size_t num_threads);

    ThreadPool& pool() { return pool_; }

    model::Tensor zeros(std::vector<std::int64_t> shape) override;
    using Ops::zeros;
    void to_device(model::Tensor& t, model::Storage storage = model::Storage::f32) override;
    model::Tensor to_host(const model::Tensor& t) override;
    MemoryInfo memory_info() override;

    void linear(const model::Tensor& x, const model::Tensor& w, model::Tensor& y) override;
    void rms_norm(const model::Tensor& x, const model::Tensor& g, float eps,
                  model::Tensor& y) override;
    void layer_norm(const model::Tensor& x, const model::Tensor& g, const model::Tensor& b,
                    float eps, model::Tensor& y) override;
    void rope(model::Tensor& x, int num_heads, int head_stride, int offset, int rope_dim,
              std::span<const std::int32_t> positions, std::span<const float> inv_freq,
              float attention_factor, bool interleaved) override;
    void silu_mul(const model::Tensor& gate, const model::Tensor& up, model::Tensor& out) override;
    void embedding(const model::Tensor& table, std::span<const std::int32_t> ids,
                   model::Tensor& out) override;
    void add(model::Tensor& x, const model::Tensor& y) override;
    void copy_cols(const model::Tensor& src, int src_col, model::Tensor& dst, int dst_col,
                   int n) override;
    void scale(model::Tensor& x, float s) override;
    void gather_rows(const model::Tensor& src, std::span<const std::int64_t> rows,
                     model::Tensor& dst) override;
    void scatter_rows(const model::Tensor& src, std::span<const std::int32_t> slots,
                      model::Tensor& dst) override;
    // Greedy rows only: the draw lives in the runtime's sampler, above this layer.
    bool pick_tokens_async(const model::Tensor& logits, std::span<const std::int64_t> greedy,
                           std::span<const model::RowSampling> draws, std::int32_t first) override;
    std::vector<std::int32_t> collect_tokens(std::int32_t first, std::int32_t n) override;
    model::IndexSelection indexer_topk(const model::Tensor& q, const model::Tensor& weights,
                                       std::span<const model::SequenceSlots> seqs,
                                       const model::Tensor& index_k, int num_heads, int head_dim,
                                       float scale, int top_k) override;
    void mla_attention(const model::Tensor& q, std::span<const model::SequenceSlots> seqs,
                       const model::LayerCacheView& cache, const model::Tensor& kv_b,
                       const model::MlaParams& params, const model::IndexSelection& selected,
                       model::Tensor& out) override;
    void moe_experts(const model::Tensor& x, const model::MoeRouting& routing,
                     std::span<const model::ExpertWeights> experts, model::Tensor& out) override;

private:
    ThreadPool pool_;
    std::vector<std::int32_t> token_slots_;
};

}  // namespace dsserve::backend::cpu
