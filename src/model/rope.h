// Rotary position frequencies, with YaRN (arXiv 2309.00071) as transformers computes them for
// DeepSeek: the per-pair inverse frequencies and the factor applied to cos and sin.
#pragma once

#include <vector>

#include "model/config.h"

namespace dsserve::model {

struct RopeTable {
    std::vector<float> inv_freq;  // [qk_rope_head_dim / 2]
    float attention_factor = 1.0f;
};

RopeTable rope_frequencies(const ModelConfig& config);

}  // namespace dsserve::model
