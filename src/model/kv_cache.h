// The model's cache: for every layer (and the MTP layer) the rows a token leaves behind, addressed
// by slot. Who owns which slot is the runtime's business (its page tables map positions to slots);
// the model only reads and writes the slots a step names.
#pragma once

#include <vector>

#include "model/config.h"
#include "model/ops.h"
#include "model/tensor.h"

namespace dsserve::model {

class KvCache {
public:
    // latent_storage: how c_KV and k_R are kept, f32 or bf16. The indexer's keys follow
    // index_key_storage().
    KvCache(const ModelConfig& config, std::int32_t num_slots, Ops& ops,
            Storage latent_storage = Storage::f32);

    std::int32_t num_slots() const { return num_slots_; }
    int num_layers() const { return static_cast<int>(latent_.size()); }
    LayerCacheView layer(int index);
    // How the indexer's keys are kept beside a latent cache in `latent_storage`: with a bfloat16
    // cache, in FP8 as DeepSeek-V3.2 keeps them (model/index_fp8.h), where the key width allows;
    // beside a float32 cache, whose point is float32 arithmetic, in float32.
    static Storage index_key_storage(const ModelConfig& config, Storage latent_storage);
    // Bytes a single token occupies across all layers.
    static std::size_t bytes_per_token(const ModelConfig& config,
                                       Storage latent_storage = Storage::f32);

private:
    std::int32_t num_slots_;
    std::vector<Tensor> latent_, rope_, index_k_;
};

}  // namespace dsserve::model
