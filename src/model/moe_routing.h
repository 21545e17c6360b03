// DeepSeek-V3 expert selection (V3 report §2.1.2): sigmoid affinities, a per-expert bias used only
// for choosing, group-limited top-k (the best topk_group groups by the sum of their two best
// biased scores), then the top num_experts_per_tok experts; gate weights are the unbiased
// affinities of the chosen experts, normalized, times routed_scaling_factor.
#pragma once

#include <span>

#include "model/config.h"
#include "model/ops.h"
#include "model/tensor.h"

namespace dsserve::model {

// router_logits: [T, n_routed_experts]; bias: [n_routed_experts]. Ties go to the lower index.
MoeRouting route_tokens(const Tensor& router_logits, std::span<const float> bias,
                        const ModelConfig& config);

}  // namespace dsserve::model
