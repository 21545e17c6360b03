#include "model/kv_cache.h"

#include "core/error.h"

namespace dsserve::model {

KvCache::KvCache(const ModelConfig& c, std::int32_t num_slots, Ops& ops) : num_slots_(num_slots) {
    const int layers = c.num_hidden_layers + c.num_nextn_predict_layers;
    for (int i = 0; i < layers; ++i) {
        latent_.push_back(ops.zeros(num_slots, c.kv_lora_rank));
        rope_.push_back(ops.zeros(num_slots, c.qk_rope_head_dim));
        if (c.sparse_attention) {
            index_k_.push_back(ops.zeros(num_slots, c.index_head_dim));
        }
    }
}

LayerCacheView KvCache::layer(int index) {
    DS_ASSERT(index >= 0 && index < num_layers(), index);
    return {&latent_[index], &rope_[index], index_k_.empty() ? nullptr : &index_k_[index]};
}

std::size_t KvCache::bytes_per_token(const ModelConfig& c) {
    std::size_t per_layer = static_cast<std::size_t>(c.kv_lora_rank + c.qk_rope_head_dim +
                                                     (c.sparse_attention ? c.index_head_dim : 0));
    return per_layer * sizeof(float) *
           static_cast<std::size_t>(c.num_hidden_layers + c.num_nextn_predict_layers);
}

}  // namespace dsserve::model
