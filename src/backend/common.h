// What every backend shares: the lightning indexer's selection rule and the checks of an op's
// operands that do not depend on where they live.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/ops.h"

namespace dsserve::backend {

// The top_k highest scores, ties to the lower position, returned in position order.

std::vector<std::int32_t> top_positions(std::span<const float> score, int top_k);

// The shapes Ops::mla_attention requires of its operands.
void check_mla_shapes(const model::Tensor& q, const model::Tensor& kv_b, const model::MlaParams& p,
                      const model::IndexSelection& selected, const model::Tensor& out);

}  // namespace dsserve::backend
