#include "model/deepseek_v32.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "model/moe_routing.h"

namespace dsserve::model {

// Where each new token sits, in batch order: its position in its sequence and its cache slot.
DeepseekV32::NewTokens DeepseekV32::new_tokens(const ForwardBatch& batch) {
    NewTokens n;
    n.positions.reserve(batch.tokens.size());
    n.slots.reserve(batch.tokens.size());
    for (const auto& s : batch.seqs) {
        for (std::int32_t j = 0; j < s.num_new; ++j) {
            n.positions.push_back(s.num_cached + j);
            n.slots.push_back(s.slots[static_cast<std::size_t>(s.num_cached + j)]);
        }
    }
    return n;
}

namespace {

void check_batch(const ForwardBatch& batch, const KvCache& cache, std::int64_t max_positions) {
    std::int64_t total = 0;
    for (const auto& s : batch.seqs) {
        DS_ASSERT(s.num_cached >= 0 && s.num_new >= 0, s.num_cached, " ", s.num_new);
        DS_ASSERT(static_cast<std::int64_t>(s.slots.size()) >= s.num_cached + s.num_new, "slots ",
                  s.slots.size(), " < ", s.num_cached + s.num_new);
        DS_ASSERT(s.num_cached + s.num_new <= max_positions, "position past the context");
        for (std::int32_t slot :
             s.slots.subspan(0, static_cast<std::size_t>(s.num_cached + s.num_new))) {
            DS_ASSERT(slot >= 0 && slot < cache.num_slots(), "slot ", slot);
        }
        total += s.num_new;
    }
    DS_ASSERT(total == batch.num_tokens(), total, " != ", batch.num_tokens());
}

}  // namespace

DeepseekV32::DeepseekV32(ModelConfig config, LoadedWeights weights, Ops& ops)
    : config_(std::move(config)),
      store_(std::move(weights.store)),
      ops_(ops),
      rope_(rope_frequencies(config_)),
      has_mtp_(weights.mtp_loaded) {
    // Weights the loader did not place already (LoadOptions::place) move now.
    for (const auto& spec : weight_manifest(config_)) {
        if (!store_.contains(spec.name)) {
            continue;
        }
        Tensor& t = store_.at_mutable(spec.name);
        if (t.on_host()) {
            if (auto where = placement(spec, config_)) {
                ops_.to_device(t, *where);
            }
        }
    }
    embed_ = w("model.embed_tokens.weight");
    final_norm_ = w("model.norm.weight");
    lm_head_ = config_.tie_word_embeddings ? embed_ : w("lm_head.weight");
    for (int i = 0; i < config_.num_hidden_layers; ++i) {
        layers_.push_back(bind_layer(i));
    }
    if (has_mtp_) {
        const std::string p = layer_prefix(config_.num_hidden_layers);
        mtp_.embed = w(p + "embed_tokens.weight");
        mtp_.enorm = w(p + "enorm.weight");
        mtp_.hnorm = w(p + "hnorm.weight");
        mtp_.eh_proj = w(p + "eh_proj.weight");
        mtp_.layer = bind_layer(config_.num_hidden_layers);
        mtp_.norm = w(p + "shared_head.norm.weight");
        mtp_.head = w(p + "shared_head.head.weight");
    }
}

DeepseekV32::Layer DeepseekV32::bind_layer(int index) const {
    const std::string p = layer_prefix(index);
    Layer l;
    l.index = index;
    l.attn_norm = w(p + "input_layernorm.weight");
    l.mlp_norm = w(p + "post_attention_layernorm.weight");
    Attention& a = l.attn;
    if (config_.q_lora_rank > 0) {
        a.q_a = w(p + "self_attn.q_a_proj.weight");
        a.q_a_norm = w(p + "self_attn.q_a_layernorm.weight");
        a.q_b = w(p + "self_attn.q_b_proj.weight");
    } else {
        a.q_proj = w(p + "self_attn.q_proj.weight");
    }
    a.kv_a = w(p + "self_attn.kv_a_proj_with_mqa.weight");
    a.kv_a_norm = w(p + "self_attn.kv_a_layernorm.weight");
    a.kv_b = w(p + "self_attn.kv_b_proj.weight");
    a.o = w(p + "self_attn.o_proj.weight");
    if (config_.sparse_attention) {
        a.idx_wq_b = w(p + "self_attn.indexer.wq_b.weight");
        a.idx_wk = w(p + "self_attn.indexer.wk.weight");
        a.idx_k_norm = w(p + "self_attn.indexer.k_norm.weight");
        a.idx_k_norm_bias = w(p + "self_attn.indexer.k_norm.bias");
        a.idx_weights = w(p + "self_attn.indexer.weights_proj.weight");
    }
    l.moe = config_.is_moe_layer(index);
    if (l.moe) {
        l.router = w(p + "mlp.gate.weight");
        l.router_bias = w(p + "mlp.gate.e_score_correction_bias");
        for (int e = 0; e < config_.n_routed_experts; ++e) {
            std::string ep = p + "mlp.experts." + std::to_string(e) + ".";
            l.experts.push_back(
                {w(ep + "gate_proj.weight"), w(ep + "up_proj.weight"), w(ep + "down_proj.weight")});
        }
        if (config_.n_shared_experts > 0) {
            l.dense = {w(p + "mlp.shared_experts.gate_proj.weight"),
                       w(p + "mlp.shared_experts.up_proj.weight"),
                       w(p + "mlp.shared_experts.down_proj.weight")};
        }
    } else {
        l.dense = {w(p + "mlp.gate_proj.weight"), w(p + "mlp.up_proj.weight"),
                   w(p + "mlp.down_proj.weight")};
    }
    return l;
}

std::optional<Storage> DeepseekV32::placement(const WeightSpec& spec, const ModelConfig& config) {
    if (spec.kind == WeightKind::kRouterBias) {
        return std::nullopt;
    }
    if (config.quant.fp8 && spec.kind == WeightKind::kLinear) {
        return Storage::fp8_block;
    }
    // An FP8 checkpoint keeps these in BF16: reading them as such halves the head's bytes.
    if (config.quant.fp8 &&
        (spec.kind == WeightKind::kEmbedding || spec.kind == WeightKind::kHead ||
         spec.kind == WeightKind::kGateProj)) {
        return Storage::bf16;
    }
    return Storage::f32;
}

KvCache DeepseekV32::make_cache(std::int32_t num_slots) {
    return KvCache(config_, num_slots, ops_, cache_storage_);
}

ForwardResult DeepseekV32::forward(const ForwardBatch& batch, KvCache& cache) {
    check_batch(batch, cache, config_.max_position_embeddings);
    const NewTokens at = new_tokens(batch);
    ops_.begin_forward(batch.tokens, at.positions, at.slots, batch.seqs);
    const float eps = static_cast<float>(config_.rms_norm_eps);
    Tensor x = ops_.empty(batch.num_tokens(), config_.hidden_size);  // [T, hidden]
    Tensor h = ops_.empty(x.shape);
    ops_.embedding(*embed_, batch.tokens, x);
    ops_.rms_norm(x, layers_.empty() ? *final_norm_ : *layers_[0].attn_norm, eps, h);
    for (std::size_t i = 0; i < layers_.size(); ++i) {
        const Tensor& next = i + 1 < layers_.size() ? *layers_[i + 1].attn_norm : *final_norm_;
        decoder_layer(layers_[i], x, h, next, batch, at, cache);
    }
    return head(batch, std::move(h), *lm_head_);
}

ForwardResult DeepseekV32::mtp_forward(const ForwardBatch& batch, const Tensor& hidden,
                                       KvCache& cache) {
    DS_ASSERT(has_mtp_, "no MTP weights");
    DS_ASSERT(hidden.rows() == batch.num_tokens(), hidden.rows(), " ", batch.num_tokens());
    check_batch(batch, cache, config_.max_position_embeddings);
    const NewTokens at = new_tokens(batch);
    const std::int64_t t = batch.num_tokens(), h = config_.hidden_size;
    const float eps = static_cast<float>(config_.rms_norm_eps);
    // h' = M [RMSNorm(Emb(t_{i+1})); RMSNorm(h_i)]: the released checkpoints put the embedding
    // half first (eh_proj's input columns 0..h-1), then the hidden-state half.
    Tensor e = ops_.zeros(t, h), hn = ops_.zeros(t, h), cat = ops_.zeros(t, 2 * h),
           x = ops_.zeros(t, h);
    ops_.embedding(*mtp_.embed, batch.tokens, e);
    ops_.rms_norm(e, *mtp_.enorm, eps, e);
    ops_.rms_norm(hidden, *mtp_.hnorm, eps, hn);
    ops_.copy_cols(e, 0, cat, 0, static_cast<int>(h));
    ops_.copy_cols(hn, 0, cat, static_cast<int>(h), static_cast<int>(h));
    ops_.linear(cat, *mtp_.eh_proj, x);
    Tensor hx = ops_.empty(x.shape);
    ops_.rms_norm(x, *mtp_.layer.attn_norm, eps, hx);
    decoder_layer(mtp_.layer, x, hx, *mtp_.norm, batch, at, cache);
    return head(batch, std::move(hx), *mtp_.head);
}

ForwardResult DeepseekV32::head(const ForwardBatch& batch, Tensor x, const Tensor& lm_head) {
    ForwardResult out;
    std::int64_t row = 0;
    for (const auto& s : batch.seqs) {
        if (batch.all_logits) {
            for (std::int32_t j = 0; j < s.num_new; ++j) {
                out.logit_rows.push_back(row + j);
            }
        } else if (s.num_new > 0) {
            out.logit_rows.push_back(row + s.num_new - 1);
        }
        row += s.num_new;
    }
    const auto rows = static_cast<std::int64_t>(out.logit_rows.size());
    // The rows ascend without repeats, so as many as x has are all of them (every decode step):
    // no gather.
    Tensor gathered;
    if (rows != x.rows()) {
        gathered = ops_.empty(rows, config_.hidden_size);
        ops_.gather_rows(x, out.logit_rows, gathered);
    }
    Tensor logits = ops_.empty(rows, config_.vocab_size);
    ops_.linear(rows != x.rows() ? gathered : x, lm_head, logits);
    out.logits = batch.logits_on_device ? std::move(logits) : ops_.to_host(logits);
    out.hidden = std::move(x);
    return out;
}

void DeepseekV32::decoder_layer(const Layer& layer, Tensor& x, Tensor& h, const Tensor& next_norm,
                                const ForwardBatch& batch, const NewTokens& at, KvCache& cache) {
    const float eps = static_cast<float>(config_.rms_norm_eps);
    ops_.add_rms_norm(x, attention(layer, h, batch, at, cache), *layer.mlp_norm, eps, h);
    ops_.add_rms_norm(x, layer.moe ? moe(layer, h) : mlp(layer.dense, h), next_norm, eps, h);
}

Tensor DeepseekV32::attention(const Layer& layer, const Tensor& h, const ForwardBatch& batch,
                              const NewTokens& at, KvCache& cache) {
    const auto& c = config_;
    const Attention& a = layer.attn;
    const std::int64_t t = h.rows();
    const int heads = c.num_attention_heads, nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim;
    const float eps = static_cast<float>(c.rms_norm_eps);
    LayerCacheView kv_cache = cache.layer(layer.index);
    const std::span<const std::int32_t> positions = at.positions, slots = at.slots;

    // The down-projections of h (queries, the joint key-value latent, the indexer's key) read h
    // together. Keys and values share one compressed latent c_KV = RMSNorm(W_DKV h) [T, kv_lora]
    // and one rotary key k_R = RoPE(W_KR h) [T, rope]; only these enter the cache.
    Tensor q = ops_.empty(t, static_cast<std::int64_t>(heads) * c.qk_head_dim());
    Tensor q_latent;  // [T, q_lora_rank], also the indexer's query input
    Tensor kv = ops_.empty(t, c.kv_lora_rank + rope);
    Tensor ik;  // the indexer's key, [T, index_head_dim]
    std::vector<const Tensor*> down_w{a.kv_a};
    std::vector<Tensor*> down_y{&kv};
    if (a.q_a != nullptr) {
        q_latent = ops_.empty(t, c.q_lora_rank);
        down_w.push_back(a.q_a);
        down_y.push_back(&q_latent);
    }
    if (c.sparse_attention) {
        ik = ops_.empty(t, c.index_head_dim);
        down_w.push_back(a.idx_wk);
        down_y.push_back(&ik);
    }
    ops_.linears(h, down_w, down_y);

    // The three down-projections' own normalizations, independent of one another: the cache
    // writes of c_KV and k_R, the indexer's key (its rotary layout is half-split, unlike MLA's
    // interleaved pairs), and the query latent's RMSNorm.
    ops_.begin_independent();
    ops_.store_latent(kv, *a.kv_a_norm, eps, positions, rope_.inv_freq, rope_.attention_factor,
                      slots, kv_cache);
    if (c.sparse_attention) {
        ops_.store_index_key(ik, *a.idx_k_norm, *a.idx_k_norm_bias, 1e-6f, rope, positions,
                             rope_.inv_freq, rope_.attention_factor, slots, *kv_cache.index_k);
    }
    if (a.q_a != nullptr) {
        ops_.rms_norm(q_latent, *a.q_a_norm, eps, q_latent);
    }
    ops_.end_independent();

    // Queries: q = W_UQ RMSNorm(W_DQ h), [T, heads * (nope + rope)], each head's last rope dims
    // rotated.
    ops_.linear_rope(a.q_a != nullptr ? q_latent : h, a.q_a != nullptr ? *a.q_b : *a.q_proj, q,
                     heads, c.qk_head_dim(), nope, rope, positions, rope_.inv_freq,
                     rope_.attention_factor, /*interleaved=*/true);

    // Lightning indexer: a few cheap heads score every earlier token; attention then reads only
    // the index_topk best. While no token sees more than index_topk positions, the selection is
    // all of them: only the keys are needed, for later steps.
    IndexSelection selected;
    const bool select =
        c.sparse_attention && std::any_of(batch.seqs.begin(), batch.seqs.end(), [&](const auto& s) {
            return s.num_cached + s.num_new > c.index_topk;
        });
    if (select) {
        const int ih = c.index_n_heads, id = c.index_head_dim;
        Tensor iq = ops_.empty(t, static_cast<std::int64_t>(ih) * id), iw = ops_.empty(t, ih);
        ops_.linear(q_latent, *a.idx_wq_b, iq);
        ops_.rope(iq, ih, id, 0, rope, positions, rope_.inv_freq, rope_.attention_factor, false);
        ops_.linear(h, *a.idx_weights, iw);
        ops_.scale(iw, 1.0f / std::sqrt(static_cast<float>(ih)));
        selected = ops_.indexer_topk(iq, iw, batch.seqs, *kv_cache.index_k, ih, id,
                                     1.0f / std::sqrt(static_cast<float>(id)), c.index_topk);
    }

    MlaParams params{heads,        nope,           rope,
                     c.v_head_dim, c.kv_lora_rank, static_cast<float>(c.softmax_scale())};
    Tensor attn = ops_.empty(t, static_cast<std::int64_t>(heads) * c.v_head_dim);
    ops_.mla_attention(q, batch.seqs, kv_cache, *a.kv_b, params, selected, attn);
    Tensor out = ops_.empty(t, c.hidden_size);
    ops_.linear(attn, *a.o, out);
    return out;
}

Tensor DeepseekV32::mlp(const ExpertWeights& m, const Tensor& h) {
    Tensor out = ops_.empty(h.rows(), config_.hidden_size);
    ops_.swiglu_mlp(h, m, out);
    return out;
}

// The routed experts, then the shared expert (DeepSeekMoE: every token also passes through it).
Tensor DeepseekV32::moe(const Layer& layer, const Tensor& h) {
    Tensor logits = ops_.empty(h.rows(), config_.n_routed_experts);
    ops_.linear(h, *layer.router, logits);
    Tensor out = ops_.zeros(h.rows(), config_.hidden_size);
    ops_.moe(h, logits, layer.router_bias->data, config_, layer.experts,
             layer.dense.gate != nullptr ? &layer.dense : nullptr, out);
    return out;
}

}  // namespace dsserve::model
