#include "model/ops.h"

#include "model/moe_routing.h"

namespace dsserve::model {

void Ops::store_latent(const Tensor& kv, const Tensor& g, float eps,
                       std::span<const std::int32_t> positions, std::span<const float> inv_freq,
                       float attention_factor, std::span<const std::int32_t> slots,
                       const LayerCacheView& cache) {
    const std::int64_t t = kv.rows();
    const int lora = static_cast<int>(cache.latent->cols()),
              rope_dim = static_cast<int>(cache.rope->cols());
    Tensor latent = empty(t, lora), k_rope = empty(t, rope_dim);
    copy_cols(kv, 0, latent, 0, lora);
    copy_cols(kv, lora, k_rope, 0, rope_dim);
    rms_norm(latent, g, eps, latent);
    rope(k_rope, 1, rope_dim, 0, rope_dim, positions, inv_freq, attention_factor, true);
    scatter_rows(latent, slots, *cache.latent);
    scatter_rows(k_rope, slots, *cache.rope);
}

void Ops::moe(const Tensor& x, const Tensor& router_logits, std::span<const float> bias,
              const ModelConfig& config, std::span<const ExpertWeights> experts, Tensor& out) {
    moe_experts(x, route_tokens(to_host(router_logits), bias, config), experts, out);
}

}  // namespace dsserve::model
