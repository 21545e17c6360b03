#include "model/moe_routing.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace dsserve::model {
namespace {

// Indices of the k largest values, larger first; ties to the lower index.
std::vector<int> top_indices(std::span<const float> values, int k) {
    std::vector<int> idx(values.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int b) {
        return values[a] > values[b] || (values[a] == values[b] && a < b);
    });
    idx.resize(static_cast<std::size_t>(k));
    return idx;
}

}  // namespace

MoeRouting route_tokens(const Tensor& router_logits, std::span<const float> bias,
                        const ModelConfig& c) {
    const int experts = c.n_routed_experts;
    const int per_group = experts / c.n_group;
    MoeRouting r;
    r.top_k = c.num_experts_per_tok;
    const std::int64_t tokens = router_logits.rows();
    r.experts.resize(static_cast<std::size_t>(tokens * r.top_k));
    r.weights.resize(r.experts.size());
    std::vector<float> scores(experts), choice(experts), group_scores(c.n_group);
    for (std::int64_t t = 0; t < tokens; ++t) {
        const float* logits = router_logits.row(t);
        for (int e = 0; e < experts; ++e) {
            scores[e] = 1.0f / (1.0f + std::exp(-logits[e]));
            choice[e] = scores[e] + bias[e];
        }
        for (int g = 0; g < c.n_group; ++g) {
            auto best =
                top_indices(std::span<const float>(choice).subspan(g * per_group, per_group), 2);
            group_scores[g] = choice[g * per_group + best[0]] + choice[g * per_group + best[1]];
        }
        auto groups = top_indices(group_scores, c.topk_group);
        std::vector<float> masked(experts, -INFINITY);
        for (int g : groups) {
            std::copy_n(choice.begin() + g * per_group, per_group, masked.begin() + g * per_group);
        }
        auto chosen = top_indices(masked, r.top_k);
        float sum = 0.0f;
        for (int k = 0; k < r.top_k; ++k) {
            sum += scores[chosen[k]];
        }
        float denom = c.norm_topk_prob ? sum + 1e-20f : 1.0f;
        for (int k = 0; k < r.top_k; ++k) {
            r.experts[t * r.top_k + k] = chosen[k];
            r.weights[t * r.top_k + k] =
                scores[chosen[k]] / denom * static_cast<float>(c.routed_scaling_factor);
        }
    }
    return r;
}

}  // namespace dsserve::model
