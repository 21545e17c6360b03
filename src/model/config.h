// DeepSeek-V3 / V3.2 model configuration, read from a Hugging Face config.json. Field names follow
// the file; derived quantities are methods. Every required field is checked on load and every
// inconsistency is an Error that names the field.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "core/json.h"

namespace dsserve::model {

// YaRN (arXiv 2309.00071) as DeepSeek configures it in rope_scaling.
struct RopeScaling {
    bool yarn = false;
    double factor = 1.0;
    std::int64_t original_max_position_embeddings = 0;
    double beta_fast = 32.0;
    double beta_slow = 1.0;
    double mscale = 1.0;
    double mscale_all_dim = 0.0;
};

// Block-FP8 weights: each Linear weight W[N, K] is stored as e4m3 with a float scale per
// block_n x block_k block (weight_scale_inv), W = fp8 * scale.
struct QuantConfig {
    bool fp8 = false;
    int block_n = 128;
    int block_k = 128;
    bool ue8m0_scales = false;  // scale_fmt "ue8m0": scales are powers of two
};

struct ModelConfig {
    std::string model_type;         // deepseek_v32 or deepseek_v3
    std::string architecture;       // DeepseekV32ForCausalLM, DeepseekV3ForCausalLM
    bool sparse_attention = false;  // DeepSeek Sparse Attention: the lightning indexer + top-k

    std::int64_t vocab_size = 0;
    std::int64_t hidden_size = 0;
    std::int64_t intermediate_size = 0;
    std::int64_t moe_intermediate_size = 0;
    int num_hidden_layers = 0;
    int num_attention_heads = 0;
    int num_nextn_predict_layers = 0;

    // MLA (DeepSeek-V2 paper §2.1): low-rank q and kv; q_lora_rank 0 means a full q projection.
    int q_lora_rank = 0;
    int kv_lora_rank = 0;
    int qk_nope_head_dim = 0;
    int qk_rope_head_dim = 0;
    int v_head_dim = 0;

    // DeepSeekMoE with auxiliary-loss-free balancing (V3 report §2.1.2).
    int n_routed_experts = 0;
    int n_shared_experts = 0;
    int num_experts_per_tok = 0;
    int n_group = 1;
    int topk_group = 1;
    int first_k_dense_replace = 0;
    int moe_layer_freq = 1;
    double routed_scaling_factor = 1.0;
    bool norm_topk_prob = true;

    // Lightning indexer (V3.2 report §2.1).
    int index_n_heads = 0;
    int index_head_dim = 0;
    int index_topk = 0;

    double rms_norm_eps = 1e-6;
    double rope_theta = 10000.0;
    RopeScaling rope_scaling;
    std::int64_t max_position_embeddings = 0;
    int bos_token_id = 0;
    int eos_token_id = 1;
    bool tie_word_embeddings = false;
    QuantConfig quant;

    Json json;  // the file as read, overrides applied

    static ModelConfig from_json(const Json& json);
    // Reads DIR/config.json, applies overrides (a JSON object, as SGLang's
    // --json-model-override-args) and validates.
    static ModelConfig load(const std::filesystem::path& dir, const std::string& overrides = "");

    int qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
    bool is_moe_layer(int layer) const;
    // Attention softmax scale: 1/sqrt(qk_head_dim), times mscale^2 under YaRN (the V3 reference).
    double softmax_scale() const;
};

// Applies a JSON object of overrides on top of a config JSON (top-level keys replaced, nested
// objects merged), as SGLang's --json-model-override-args does.
Json apply_overrides(Json base, const std::string& overrides);

}  // namespace dsserve::model
