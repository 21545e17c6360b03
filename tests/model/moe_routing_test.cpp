#include "model/moe_routing.h"

#include <gtest/gtest.h>

#include <cmath>

namespace dsserve::model {
namespace {

ModelConfig routing_config(int experts, int groups, int topk_group, int top_k) {
    ModelConfig c;
    c.n_routed_experts = experts;
    c.n_group = groups;
    c.topk_group = topk_group;
    c.num_experts_per_tok = top_k;
    c.norm_topk_prob = true;
    c.routed_scaling_factor = 2.5;
    return c;
}

float logit(float p) {
    return std::log(p / (1.0f - p));
}

TEST(MoeRoutingTest, GroupLimitedChoiceOnCraftedScores) {
    // 8 experts in 4 groups of 2. Affinities (after sigmoid):
    //   group 0: 0.9 0.2   group 1: 0.6 0.6   group 2: 0.95 0.05   group 3: 0.5 0.45
    // Group scores (top-2 sums): 1.1, 1.2, 1.0, 0.95; the two best groups are 1 and 0. Expert 4
    // (0.95) has the highest affinity of all but lives in group 2, which is not chosen, so the
    // top-2 are expert 0 (0.9) and, of the tied experts 2 and 3 (0.6), the lower index.
    auto c = routing_config(8, 4, 2, 2);
    Tensor logits(1, 8);
    float p[8] = {0.9f, 0.2f, 0.6f, 0.6f, 0.95f, 0.05f, 0.5f, 0.45f};
    for (int e = 0; e < 8; ++e) {
        logits.data[e] = logit(p[e]);
    }
    std::vector<float> bias(8, 0.0f);
    auto r = route_tokens(logits, bias, c);
    ASSERT_EQ(r.experts.size(), 2u);
    EXPECT_EQ(r.experts[0], 0);
    EXPECT_EQ(r.experts[1], 2);
    EXPECT_NEAR(r.weights[0], 0.9f / 1.5f * 2.5f, 1e-5);
    EXPECT_NEAR(r.weights[1], 0.6f / 1.5f * 2.5f, 1e-5);
}

TEST(MoeRoutingTest, BiasSteersChoiceButNotWeights) {
    auto c = routing_config(4, 1, 1, 1);
    Tensor logits(1, 4);
    float p[4] = {0.8f, 0.7f, 0.2f, 0.1f};
    for (int e = 0; e < 4; ++e) {
        logits.data[e] = logit(p[e]);
    }
    std::vector<float> bias = {0.0f, 0.0f, 0.0f, 0.75f};  // expert 3: 0.1 + 0.75 = 0.85 wins
    auto r = route_tokens(logits, bias, c);
    EXPECT_EQ(r.experts[0], 3);
    // One expert, normalized: weight = scaling factor, from the unbiased affinity.
    EXPECT_NEAR(r.weights[0], 2.5f, 1e-5);
    c.norm_topk_prob = false;
    r = route_tokens(logits, bias, c);
    EXPECT_NEAR(r.weights[0], 0.1f * 2.5f, 1e-5);
}

}  // namespace
}  // namespace dsserve::model
