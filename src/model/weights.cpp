#include "model/weights.h"

namespace dsserve::model {
namespace {

void add_decoder_layer(const ModelConfig& c, int layer, bool mtp, std::vector<WeightSpec>& out) {
    const std::string p = layer_prefix(layer);
    const std::int64_t h = c.hidden_size;
    const std::int64_t heads = c.num_attention_heads;
    auto add = [&](std::string name, std::vector<std::int64_t> shape, WeightKind kind) {
        out.push_back({p + name, std::move(shape), kind, mtp});
    };
    add("input_layernorm.weight", {h}, WeightKind::kNorm);
    add("post_attention_layernorm.weight", {h}, WeightKind::kNorm);
    if (c.q_lora_rank > 0) {
        add("self_attn.q_a_proj.weight", {c.q_lora_rank, h}, WeightKind::kLinear);
        add("self_attn.q_a_layernorm.weight", {c.q_lora_rank}, WeightKind::kNorm);
        add("self_attn.q_b_proj.weight", {heads * c.qk_head_dim(), c.q_lora_rank},
            WeightKind::kLinear);
    } else {
        add("self_attn.q_proj.weight", {heads * c.qk_head_dim(), h}, WeightKind::kLinear);
    }
    add("self_attn.kv_a_proj_with_mqa.weight", {c.kv_lora_rank + c.qk_rope_head_dim, h},
        WeightKind::kLinear);
    add("self_attn.kv_a_layernorm.weight", {c.kv_lora_rank}, WeightKind::kNorm);
    add("self_attn.kv_b_proj.weight", {heads * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank},
        WeightKind::kLinear);
    add("self_attn.o_proj.weight", {h, heads * c.v_head_dim}, WeightKind::kLinear);
    if (c.sparse_attention) {
        add("self_attn.indexer.wq_b.weight", {c.index_n_heads * c.index_head_dim, c.q_lora_rank},
            WeightKind::kLinear);
        add("self_attn.indexer.wk.weight", {c.index_head_dim, h}, WeightKind::kLinear);
        add("self_attn.indexer.k_norm.weight", {c.index_head_dim}, WeightKind::kNorm);
        add("self_attn.indexer.k_norm.bias", {c.index_head_dim}, WeightKind::kNormBias);
        add("self_attn.indexer.weights_proj.weight", {c.index_n_heads, h}, WeightKind::kGateProj);
    }
    if (c.is_moe_layer(layer)) {
        const std::int64_t inter = c.moe_intermediate_size;
        add("mlp.gate.weight", {c.n_routed_experts, h}, WeightKind::kRouter);
        add("mlp.gate.e_score_correction_bias", {c.n_routed_experts}, WeightKind::kRouterBias);
        for (int e = 0; e < c.n_routed_experts; ++e) {
            std::string ep = "mlp.experts." + std::to_string(e) + ".";
            add(ep + "gate_proj.weight", {inter, h}, WeightKind::kLinear);
            add(ep + "up_proj.weight", {inter, h}, WeightKind::kLinear);
            add(ep + "down_proj.weight", {h, inter}, WeightKind::kLinear);
        }
        if (c.n_shared_experts > 0) {
            const std::int64_t shared = inter * c.n_shared_experts;
            add("mlp.shared_experts.gate_proj.weight", {shared, h}, WeightKind::kLinear);
            add("mlp.shared_experts.up_proj.weight", {shared, h}, WeightKind::kLinear);
            add("mlp.shared_experts.down_proj.weight", {h, shared}, WeightKind::kLinear);
        }
    } else {
        add("mlp.gate_proj.weight", {c.intermediate_size, h}, WeightKind::kLinear);
        add("mlp.up_proj.weight", {c.intermediate_size, h}, WeightKind::kLinear);
        add("mlp.down_proj.weight", {h, c.intermediate_size}, WeightKind::kLinear);
    }
}

}  // namespace

std::string layer_prefix(int layer) {
    return "model.layers." + std::to_string(layer) + ".";
}

std::vector<WeightSpec> weight_manifest(const ModelConfig& c) {
    std::vector<WeightSpec> out;
    out.push_back(
        {"model.embed_tokens.weight", {c.vocab_size, c.hidden_size}, WeightKind::kEmbedding});
    for (int layer = 0; layer < c.num_hidden_layers; ++layer) {
        add_decoder_layer(c, layer, false, out);
    }
    out.push_back({"model.norm.weight", {c.hidden_size}, WeightKind::kNorm});
    if (!c.tie_word_embeddings) {
        out.push_back({"lm_head.weight", {c.vocab_size, c.hidden_size}, WeightKind::kHead});
    }
    // The MTP module is stored as one more layer (V3 report §2.2): its own embedding and head
    // copies, the two input norms, the projection of their concatenation, and a full decoder layer.
    for (int k = 0; k < c.num_nextn_predict_layers; ++k) {
        const int layer = c.num_hidden_layers + k;
        const std::string p = layer_prefix(layer);
        out.push_back({p + "embed_tokens.weight",
                       {c.vocab_size, c.hidden_size},
                       WeightKind::kEmbedding,
                       true});
        out.push_back({p + "enorm.weight", {c.hidden_size}, WeightKind::kNorm, true});
        out.push_back({p + "hnorm.weight", {c.hidden_size}, WeightKind::kNorm, true});
        out.push_back(
            {p + "eh_proj.weight", {c.hidden_size, 2 * c.hidden_size}, WeightKind::kLinear, true});
        add_decoder_layer(c, layer, true, out);
        out.push_back({p + "shared_head.norm.weight", {c.hidden_size}, WeightKind::kNorm, true});
        out.push_back({p + "shared_head.head.weight",
                       {c.vocab_size, c.hidden_size},
                       WeightKind::kHead,
                       true});
    }
    return out;
}

std::vector<std::int64_t> scale_shape(const ModelConfig& c,
                                      const std::vector<std::int64_t>& shape) {
    return {(shape[0] + c.quant.block_n - 1) / c.quant.block_n,
            (shape[1] + c.quant.block_k - 1) / c.quant.block_k};
}

}  // namespace dsserve::model
