// The selection rule of the lightning indexer, shared by every backend that selects on the host:
// the top_k highest scores, ties to the lower position, returned in position order.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace dsserve::backend {

std::vector<std::int32_t> top_positions(std::span<const float> score, int top_k);

}  // namespace dsserve::backend
