#include "model/kv_cache.h"

#include "core/error.h"
#include "model/index_fp8.h"

namespace dsserve::model {

KvCache::KvCache(const ModelConfig& c, std::int32_t num_slots, Ops& ops, Storage latent_storage)
    : num_slots_(num_slots) {
    DS_CHECK(latent_storage == Storage::f32 || latent_storage == Storage::bf16,
             "the MLA cache is kept in float32 or bfloat16");
    const int layers = c.num_hidden_layers + c.num_nextn_predict_layers;
    const Storage index_storage = index_key_storage(c, latent_storage);
    for (int i = 0; i < layers; ++i) {
        latent_.push_back(ops.cache_zeros(num_slots, c.kv_lora_rank, latent_storage));
        rope_.push_back(ops.cache_zeros(num_slots, c.qk_rope_head_dim, latent_storage));
        if (c.sparse_attention) {
            index_k_.push_back(ops.cache_zeros(num_slots, c.index_head_dim, index_storage));
        }
    }
}

LayerCacheView KvCache::layer(int index) {
    DS_ASSERT(index >= 0 && index < num_layers(), index);
    return {&latent_[index], &rope_[index], index_k_.empty() ? nullptr : &index_k_[index]};
}

Storage KvCache::index_key_storage(const ModelConfig& c, Storage latent_storage) {
    return latent_storage == Storage::bf16 && fp8_index_supported(c.index_head_dim)
               ? Storage::fp8_row
               : Storage::f32;
}

std::size_t KvCache::bytes_per_token(const ModelConfig& c, Storage latent_storage) {
    const std::size_t latent_bytes = latent_storage == Storage::bf16 ? 2 : sizeof(float);
    std::size_t index_bytes = 0;
    if (c.sparse_attention) {
        const auto dim = static_cast<std::size_t>(c.index_head_dim);
        // An FP8 row: a byte a value and its float32 scale.
        index_bytes = index_key_storage(c, latent_storage) == Storage::fp8_row
                          ? dim + sizeof(float)
                          : dim * sizeof(float);
    }
    const std::size_t per_layer =
        static_cast<std::size_t>(c.kv_lora_rank + c.qk_rope_head_dim) * latent_bytes + index_bytes;
    return per_layer * static_cast<std::size_t>(c.num_hidden_layers + c.num_nextn_predict_layers);
}

}  // namespace dsserve::model
