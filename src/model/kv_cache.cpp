#include "model/kv_cache.h"

#include "core/error.h"

namespace dsserve::model {

KvCache::KvCache(const ModelConfig& c, std::int32_t num_slots, Ops& ops, Storage latent_storage)
    : num_slots_(num_slots) {
    DS_CHECK(latent_storage == Storage::f32 || latent_storage == Storage::bf16,
             "the MLA cache is kept in float32 or bfloat16");
    const int layers = c.num_hidden_layers + c.num_nextn_predict_layers;
    for (int i = 0; i < layers; ++i) {
        latent_.push_back(ops.cache_zeros(num_slots, c.kv_lora_rank, latent_storage));
        rope_.push_back(ops.cache_zeros(num_slots, c.qk_rope_head_dim, latent_storage));
        if (c.sparse_attention) {
            index_k_.push_back(ops.zeros(num_slots, c.index_head_dim));
        }
    }
}

LayerCacheView KvCache::layer(int index) {
    DS_ASSERT(index >= 0 && index < num_layers(), index);
    return {&latent_[index], &rope_[index], index_k_.empty() ? nullptr : &index_k_[index]};
}

std::size_t KvCache::bytes_per_token(const ModelConfig& c, Storage latent_storage) {
    const std::size_t latent_bytes = latent_storage == Storage::bf16 ? 2 : sizeof(float);
    const std::size_t per_layer =
        static_cast<std::size_t>(c.kv_lora_rank + c.qk_rope_head_dim) * latent_bytes +
        static_cast<std::size_t>(c.sparse_attention ? c.index_head_dim : 0) * sizeof(float);
    return per_layer * static_cast<std::size_t>(c.num_hidden_layers + c.num_nextn_predict_layers);
}

}  // namespace dsserve::model
