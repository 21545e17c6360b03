#include "backend/top_positions.h"

#include <algorithm>
#include <numeric>

namespace dsserve::backend {

std::vector<std::int32_t> top_positions(std::span<const float> score, int top_k) {
    std::vector<std::int32_t> out(score.size());
    std::iota(out.begin(), out.end(), 0);
    if (static_cast<std::size_t>(top_k) >= out.size()) {
        return out;
    }
    std::nth_element(
        out.begin(), out.begin() + top_k, out.end(), [&](std::int32_t a, std::int32_t c) {
            return score[static_cast<std::size_t>(a)] > score[static_cast<std::size_t>(c)] ||
                   (score[static_cast<std::size_t>(a)] == score[static_cast<std::size_t>(c)] &&
                    a < c);
        });
    out.resize(static_cast<std::size_t>(top_k));
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace dsserve::backend
