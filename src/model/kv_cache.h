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
    // latent_storage: how c_KV and k_R are kept, f32 or bf16.
    KvCache(const ModelConfig& config, std::int32_t num_slots, Ops& ops,
            Storage latent_storage = Storage::f32);

    std::int32_t num_slots() const { return num_slots_; }
    int num_layers() const { return static_cast<int>(latent_.size()); }
    LayerCacheView layer(int index);
    // Bytes a single token occupies across all layers.
    static std::size_t bytes_per_token(const ModelConfig& config,
                                       Storage latent_storage = Storage::f32);

private:
    std::int32_t num_slots_;
    std::vector<Tensor> latent_, rope_, index_k_;
};

}  // namespace dsserve::model
