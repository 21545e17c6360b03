// The CUDA backend: activations in device memory as float32, the MLA cache in float32 or bfloat16
// (--kv-cache-dtype); weights in block FP8, BF16 or float32 as the model places them. Products with
// few rows (decode) run in our GEMV kernels (gemv.h), larger ones through cuBLAS / cuBLASLt;
// everything else in our kernels (kernels.cu). All work goes to one stream, so ops run in the order
// the model issues them; only to_host waits, and MoE routing stays on the device (moe_gemm.h for
// steps with many routed rows).
#pragma once

#include <memory>

#include "model/ops.h"

namespace dsserve::backend::cuda {

class CudaOps final : public model::Ops {
public:
    // Fails with a message when there is no usable device `device`. fp32: keep every weight in
    // float32 (CPU-identical arithmetic) instead of the block-FP8 format the model asks for.
    explicit CudaOps(int device, bool fp32 = false);
    ~CudaOps() override;

    model::Tensor zeros(std::vector<std::int64_t> shape) override;
    using Ops::zeros;
    model::Tensor empty(std::vector<std::int64_t> shape) override;
    using Ops::empty;
    model::Tensor cache_zeros(std::int64_t rows, std::int64_t cols,
                              model::Storage storage) override;
    void to_device(model::Tensor& t, model::Storage storage = model::Storage::f32) override;
    model::Tensor to_host(const model::Tensor& t) override;
    MemoryInfo memory_info() override;
    std::optional<model::Tensor> random_normal(std::vector<std::int64_t> shape,
                                               const model::NormalInit& init) override;

    void linear(const model::Tensor& x, const model::Tensor& w, model::Tensor& y) override;
    void linears(const model::Tensor& x, std::span<const model::Tensor* const> ws,
                 std::span<model::Tensor* const> ys) override;
    void rms_norm(const model::Tensor& x, const model::Tensor& g, float eps,
                  model::Tensor& y) override;
    void layer_norm(const model::Tensor& x, const model::Tensor& g, const model::Tensor& b,
                    float eps, model::Tensor& y) override;
    void rope(model::Tensor& x, int num_heads, int head_stride, int offset, int rope_dim,
              std::span<const std::int32_t> positions, std::span<const float> inv_freq,
              float attention_factor, bool interleaved) override;
    void linear_rope(const model::Tensor& x, const model::Tensor& w, model::Tensor& y,
                     int num_heads, int head_stride, int offset, int rope_dim,
                     std::span<const std::int32_t> positions, std::span<const float> inv_freq,
                     float attention_factor, bool interleaved) override;
    void add_rms_norm(model::Tensor& x, const model::Tensor& y, const model::Tensor& g, float eps,
                      model::Tensor& h) override;
    void store_latent(const model::Tensor& kv, const model::Tensor& g, float eps,
                      std::span<const std::int32_t> positions, std::span<const float> inv_freq,
                      float attention_factor, std::span<const std::int32_t> slots,
                      const model::LayerCacheView& cache) override;
    void store_index_key(const model::Tensor& k, const model::Tensor& g, const model::Tensor& b,
                         float eps, int rope_dim, std::span<const std::int32_t> positions,
                         std::span<const float> inv_freq, float attention_factor,
                         std::span<const std::int32_t> slots, model::Tensor& index_k) override;
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
    std::vector<std::int32_t> argmax_rows(const model::Tensor& logits,
                                          std::span<const std::int64_t> rows) override;
    model::Tensor rows_to_host(const model::Tensor& t, std::span<const std::int64_t> rows) override;
    model::IndexSelection indexer_topk(const model::Tensor& q, const model::Tensor& weights,
                                       std::span<const model::SequenceSlots> seqs,
                                       const model::Tensor& index_k, int num_heads, int head_dim,
                                       float scale, int top_k) override;
    std::vector<std::vector<std::int32_t>> selection_positions(
        const model::IndexSelection& selection) override;
    std::optional<std::vector<std::int32_t>> sample_rows(
        const model::Tensor& logits, std::span<const model::RowSampling> rows) override;
    void begin_independent() override;
    void end_independent() override;
    bool pick_tokens_async(const model::Tensor& logits, std::span<const std::int64_t> greedy,
                           std::span<const model::RowSampling> draws, std::int32_t first) override;
    std::vector<std::int32_t> collect_tokens(std::int32_t first, std::int32_t n) override;
    void mla_attention(const model::Tensor& q, std::span<const model::SequenceSlots> seqs,
                       const model::LayerCacheView& cache, const model::Tensor& kv_b,
                       const model::MlaParams& params, const model::IndexSelection& selected,
                       model::Tensor& out) override;
    void begin_forward(std::span<const std::int32_t> ids, std::span<const std::int32_t> positions,
                       std::span<const std::int32_t> slots,
                       std::span<const model::SequenceSlots> seqs) override;
    // Graph steps (model::Ops::GraphStep): a key's first step runs in the graph's form and
    // measures its memory, the second is recorded (and launched), the rest replay it.
    GraphStep begin_graph_step(const void* owner, int tokens, int max_keys) override;
    void end_graph_step() override;
    void abandon_graph_step() override;
    void drop_graph_steps(const void* owner) override;
    void replay_graph_step(std::span<const std::int32_t> ids,
                           std::span<const model::SequenceSlots> seqs) override;
    void swiglu_mlp(const model::Tensor& x, const model::ExpertWeights& mlp,
                    model::Tensor& y) override;
    void moe_experts(const model::Tensor& x, const model::MoeRouting& routing,
                     std::span<const model::ExpertWeights> experts, model::Tensor& out) override;
    void moe(const model::Tensor& x, const model::Tensor& router_logits,
             std::span<const float> bias, const model::ModelConfig& config,
             std::span<const model::ExpertWeights> experts, const model::ExpertWeights* shared,
             model::Tensor& out) override;

    // Routed rows (tokens x experts a token, the shared one included) from which a MoE step with
    // block-FP8 experts runs them on the tiled GEMM rather than the grouped GEMV (the
    // benchmark and the tests move it to compare the two at one size).
    static constexpr std::int64_t kDefaultMoeGemmRows = 1800;
    void set_moe_gemm_rows(std::int64_t rows);
    // New tokens from which a causal prefill step over a BF16 cache runs MLA unabsorbed
    // (mha_prefill.h; also only when they are at least half of the keys they see); the benchmark
    // moves it to compare both forms at one size.
    static constexpr std::int64_t kDefaultMhaTokens = 128;
    void set_mha_tokens(std::int64_t tokens);

    // Waits for all enqueued work; with DSSERVE_CUDA_PROFILE set, ends a profiled pass.
    void synchronize() override;

private:
    model::IndexSelection graph_indexer_topk(const model::Tensor& q, const model::Tensor& weights,
                                             std::span<const model::SequenceSlots> seqs,
                                             const model::Tensor& index_k, int num_heads,
                                             int head_dim, float scale, int top_k,
                                             std::shared_ptr<void> selection);

    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// How many CUDA devices this process can use (0 when there is no driver or device).
int cuda_device_count();

}  // namespace dsserve::backend::cuda
