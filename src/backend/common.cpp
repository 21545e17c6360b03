#include "backend/common.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"

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

void check_mla_shapes(const model::Tensor& q, const model::Tensor& kv_b, const model::MlaParams& p,
                      const model::IndexSelection& selected, const model::Tensor& out) {
    const std::int64_t heads = p.num_heads, nope = p.qk_nope_head_dim, v = p.v_head_dim;
    DS_ASSERT(q.cols() == heads * (nope + p.qk_rope_head_dim) && out.cols() == heads * v &&
                  kv_b.rows() == heads * (nope + v) && kv_b.cols() == p.kv_lora_rank,
              q.cols(), " ", kv_b.rows());
    DS_ASSERT(selected.positions.empty() ||
                  static_cast<std::int64_t>(selected.positions.size()) == q.rows(),
              selected.positions.size());
}

}  // namespace dsserve::backend
