// DeepSeek-V3.2 (and DeepSeek-V3, its dense-attention parent) as a forward pass over a batch of
// sequences: MLA with low-rank q and kv, the lightning indexer and top-k sparse attention,
// DeepSeekMoE with a shared expert, and the multi-token-prediction module.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "model/config.h"
#include "model/kv_cache.h"
#include "model/loader.h"
#include "model/ops.h"
#include "model/rope.h"

namespace dsserve::model {

// One step's work: the new tokens of every sequence, back to back, and where each sequence's
// tokens live in the cache.
struct ForwardBatch {
    std::vector<std::int32_t> tokens;
    std::vector<SequenceSlots> seqs;
    bool all_logits = false;  // logits for every new token, else only each sequence's last
    // Leave the logits where the backend computes (device memory on a GPU) instead of copying
    // them to the host: the caller picks tokens there (Ops::argmax_rows) and copies only the
    // rows it still needs (Ops::rows_to_host).
    bool logits_on_device = false;

    std::int64_t num_tokens() const { return static_cast<std::int64_t>(tokens.size()); }
};

struct ForwardResult {
    Tensor
        hidden;  // [T, hidden]: final-norm hidden states, the MTP module's input (on the backend)
    Tensor logits;  // [rows, vocab], on the host, or the backend's when batch.logits_on_device
    std::vector<std::int64_t> logit_rows;  // which token row each logits row belongs to
};

class DeepseekV32 {
public:
    DeepseekV32(ModelConfig config, LoadedWeights weights, Ops& ops);

    const ModelConfig& config() const { return config_; }
    bool has_mtp() const { return has_mtp_; }
    Ops& ops() { return ops_; }

    // Where a weight lives: the router's bias stays on the host (it steers a choice made there);
    // the rest goes to the backend, linear layers in block FP8 when the checkpoint is FP8 (the
    // backend keeps float32 where it cannot or is told not to), kv_b_proj included: attention
    // reads it split per head in the absorbed form, in whatever storage the backend keeps.
    static std::optional<Storage> placement(const WeightSpec& spec, const ModelConfig& config);

    // A cache of num_slots token rows for every layer, in the backend's memory, its MLA tables in
    // cache_storage() (float32 unless set).
    KvCache make_cache(std::int32_t num_slots);
    void set_cache_storage(Storage storage) { cache_storage_ = storage; }
    Storage cache_storage() const { return cache_storage_; }

    ForwardResult forward(const ForwardBatch& batch, KvCache& cache);

    // The MTP module (V3 report §2.2) at depth 1: row t combines the main model's hidden state at
    // token t with the embedding of the token that follows it (batch.tokens holds those next
    // tokens, at token t's positions and slots) and predicts the token after that.
    ForwardResult mtp_forward(const ForwardBatch& batch, const Tensor& hidden, KvCache& cache);

private:
    struct Attention {
        const Tensor* q_a = nullptr;
        const Tensor* q_a_norm = nullptr;
        const Tensor* q_b = nullptr;
        const Tensor* q_proj = nullptr;
        const Tensor* kv_a = nullptr;
        const Tensor* kv_a_norm = nullptr;
        const Tensor* kv_b = nullptr;
        const Tensor* o = nullptr;
        // the lightning indexer
        const Tensor* idx_wq_b = nullptr;
        const Tensor* idx_wk = nullptr;
        const Tensor* idx_k_norm = nullptr;
        const Tensor* idx_k_norm_bias = nullptr;
        const Tensor* idx_weights = nullptr;
    };
    struct Layer {
        int index = 0;
        const Tensor* attn_norm = nullptr;
        const Tensor* mlp_norm = nullptr;
        Attention attn;
        bool moe = false;
        ExpertWeights dense{};  // dense layers; the shared expert in MoE layers
        const Tensor* router = nullptr;
        const Tensor* router_bias = nullptr;
        std::vector<ExpertWeights> experts;
    };
    struct Mtp {
        const Tensor* embed = nullptr;
        const Tensor* enorm = nullptr;
        const Tensor* hnorm = nullptr;
        const Tensor* eh_proj = nullptr;
        Layer layer;
        const Tensor* norm = nullptr;
        const Tensor* head = nullptr;
    };

    struct NewTokens {
        std::vector<std::int32_t> positions, slots;
    };
    static NewTokens new_tokens(const ForwardBatch& batch);

    Layer bind_layer(int index) const;
    const Tensor* w(const std::string& name) const { return &store_.at(name); }

    // x is the residual stream and h = RMSNorm(x) with the layer's input norm on entry; on exit
    // x has both sub-blocks added and h = RMSNorm(x) with next_norm (the next layer's input norm,
    // or the final norm).
    void decoder_layer(const Layer& layer, Tensor& x, Tensor& h, const Tensor& next_norm,
                       const ForwardBatch& batch, const NewTokens& at, KvCache& cache);
    Tensor attention(const Layer& layer, const Tensor& h, const ForwardBatch& batch,
                     const NewTokens& at, KvCache& cache);
    Tensor mlp(const ExpertWeights& mlp, const Tensor& h);
    Tensor moe(const Layer& layer, const Tensor& h);
    // hidden: after the final norm.
    ForwardResult head(const ForwardBatch& batch, Tensor hidden, const Tensor& lm_head);

    ModelConfig config_;
    WeightStore store_;
    Ops& ops_;
    RopeTable rope_;
    bool has_mtp_ = false;
    Storage cache_storage_ = Storage::f32;
    const Tensor* embed_ = nullptr;
    const Tensor* final_norm_ = nullptr;
    const Tensor* lm_head_ = nullptr;
    std::vector<Layer> layers_;
    Mtp mtp_;
};

}  // namespace dsserve::model
