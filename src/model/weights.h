// The weight manifest: every tensor a DeepSeek-V3/V3.2 checkpoint holds, with its official
// Hugging Face name and shape, derived from the config. make-model writes exactly this list; the
// loader checks a checkpoint against it before reading a byte.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"

namespace dsserve::model {

enum class WeightKind {
    kEmbedding,   // [vocab, hidden], kept in high precision
    kLinear,      // [out, in]; block-FP8 in FP8 checkpoints (with <name>_scale_inv)
    kHead,        // lm_head / MTP shared head, kept in high precision
    kNorm,        // RMSNorm / LayerNorm gain
    kNormBias,    // LayerNorm bias (the indexer's k_norm)
    kRouter,      // MoE gate [experts, hidden], high precision
    kRouterBias,  // e_score_correction_bias [experts], float32
    kGateProj,    // indexer weights_proj [index_heads, hidden], high precision
};

struct WeightSpec {
    std::string name;
    std::vector<std::int64_t> shape;
    WeightKind kind;
    bool mtp = false;  // part of the multi-token-prediction module (layer num_hidden_layers)
};

std::string layer_prefix(int layer);
std::vector<WeightSpec> weight_manifest(const ModelConfig& config);
// The scale tensor of a block-FP8 linear weight: [ceil(out / block_n), ceil(in / block_k)].
std::vector<std::int64_t> scale_shape(const ModelConfig& config,
                                      const std::vector<std::int64_t>& shape);

}  // namespace dsserve::model
