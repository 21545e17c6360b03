#include "backend/cpu/cpu_ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numeric>
#include <random>

namespace dsserve::backend::cpu {
namespace {

using model::Tensor;

TEST(CpuOpsTest, IndexerTopKBreaksTiesTowardLowerPositions) {
    CpuOps ops(2);
    // One head of dim 2; every key identical except position 5, which scores highest.
    const int positions = 10;
    Tensor index_k(positions, 2);
    for (int p = 0; p < positions; ++p) {
        index_k.row(p)[0] = 1.0f;
        index_k.row(p)[1] = p == 5 ? 3.0f : 0.0f;
    }
    Tensor q(1, 2), w(1, 1);
    q.data = {1.0f, 1.0f};
    w.data = {1.0f};
    std::vector<std::int32_t> slots(positions);
    std::iota(slots.begin(), slots.end(), 0);
    model::SequenceSlots seq{positions - 1, 1, slots};
    auto sel = ops.indexer_topk(q, w, {&seq, 1}, index_k, 1, 2, 1.0f, 4).positions;
    ASSERT_EQ(sel.size(), 1u);
    EXPECT_EQ(sel[0], (std::vector<std::int32_t>{0, 1, 2, 5}));
    // Negative weights flip the order: ReLU(q.k) is weighted, so the best keys are the smallest.
    w.data = {-1.0f};
    sel = ops.indexer_topk(q, w, {&seq, 1}, index_k, 1, 2, 1.0f, 4).positions;
    EXPECT_EQ(sel[0], (std::vector<std::int32_t>{0, 1, 2, 3}));
    // Fewer causal positions than top_k: all of them.
    model::SequenceSlots early{2, 1, slots};
    sel = ops.indexer_topk(q, w, {&early, 1}, index_k, 1, 2, 1.0f, 4).positions;
    EXPECT_EQ(sel[0], (std::vector<std::int32_t>{0, 1, 2}));
}

// Absorbed MLA against the textbook form: expand k = [W_UK c; k_R] and v = W_UV c per head and
// run softmax attention, restricted to the selected positions.
TEST(CpuOpsTest, AbsorbedMlaEqualsExpandedAttention) {
    CpuOps ops(2);
    const int heads = 2, nope = 3, rope = 2, v = 3, lora = 4, positions = 5;
    std::mt19937 rng(1);
    std::normal_distribution<float> nd;
    auto fill = [&](Tensor& t) {
        for (float& x : t.data) {
            x = nd(rng);
        }
    };
    Tensor latent(positions, lora), krope(positions, rope), kv_b(heads * (nope + v), lora),
        q(1, heads * (nope + rope));
    fill(latent);
    fill(krope);
    fill(kv_b);
    fill(q);
    std::vector<std::int32_t> slots = {4, 3, 2, 1, 0};  // positions live in reversed slots
    Tensor latent_by_slot(positions, lora), rope_by_slot(positions, rope);
    for (int p = 0; p < positions; ++p) {
        std::copy_n(latent.row(p), lora, latent_by_slot.row(slots[p]));
        std::copy_n(krope.row(p), rope, rope_by_slot.row(slots[p]));
    }
    model::LayerCacheView cache{&latent_by_slot, &rope_by_slot, nullptr};
    model::MlaParams params{heads, nope, rope, v, lora, 0.7f};
    model::SequenceSlots seq{positions - 1, 1, slots};
    std::vector<std::vector<std::int32_t>> selected = {{0, 2, 4}};
    Tensor out(1, heads * v);
    ops.mla_attention(q, {&seq, 1}, cache, kv_b, params, {selected, nullptr}, out);
    for (int h = 0; h < heads; ++h) {
        std::vector<double> scores;
        for (int p : selected[0]) {
            double s = 0.0;
            for (int d = 0; d < nope; ++d) {
                double k = 0.0;
                for (int c = 0; c < lora; ++c) {
                    k += kv_b.row(h * (nope + v) + d)[c] * latent.row(p)[c];
                }
                s += q.row(0)[h * (nope + rope) + d] * k;
            }
            for (int d = 0; d < rope; ++d) {
                s += q.row(0)[h * (nope + rope) + nope + d] * krope.row(p)[d];
            }
            scores.push_back(s * 0.7);
        }
        double mx = *std::max_element(scores.begin(), scores.end()), z = 0.0;
        for (double& s : scores) {
            s = std::exp(s - mx);
            z += s;
        }
        for (int d = 0; d < v; ++d) {
            double o = 0.0;
            for (std::size_t i = 0; i < selected[0].size(); ++i) {
                double val = 0.0;
                for (int c = 0; c < lora; ++c) {
                    val += kv_b.row(h * (nope + v) + nope + d)[c] * latent.row(selected[0][i])[c];
                }
                o += scores[i] / z * val;
            }
            EXPECT_NEAR(out.row(0)[h * v + d], o, 1e-5) << h << " " << d;
        }
    }
}

TEST(CpuOpsTest, RopeLayouts) {
    CpuOps ops(1);
    Tensor x(1, 4);
    x.data = {1.0f, 2.0f, 3.0f, 4.0f};
    std::vector<float> inv_freq = {1.0f, 0.5f};
    std::vector<std::int32_t> pos = {1};
    Tensor y = x;
    ops.rope(y, 1, 4, 0, 4, pos, inv_freq, 1.0f, true);  // pairs (0,1), (2,3)
    EXPECT_NEAR(y.data[0], std::cos(1.0f) * 1 - std::sin(1.0f) * 2, 1e-6);
    EXPECT_NEAR(y.data[1], std::cos(1.0f) * 2 + std::sin(1.0f) * 1, 1e-6);
    EXPECT_NEAR(y.data[2], std::cos(0.5f) * 3 - std::sin(0.5f) * 4, 1e-6);
    y = x;
    ops.rope(y, 1, 4, 0, 4, pos, inv_freq, 1.0f, false);  // pairs (0,2), (1,3)
    EXPECT_NEAR(y.data[0], std::cos(1.0f) * 1 - std::sin(1.0f) * 3, 1e-6);
    EXPECT_NEAR(y.data[2], std::cos(1.0f) * 3 + std::sin(1.0f) * 1, 1e-6);
    EXPECT_NEAR(y.data[1], std::cos(0.5f) * 2 - std::sin(0.5f) * 4, 1e-6);
}

// The host defaults the CPU backend keeps: rows in list order, ties to the lower index, NaN
// losing except at index 0, all -inf giving 0.
TEST(CpuOpsTest, ArgmaxRowsAndRowsToHostDefaults) {
    CpuOps ops(1);
    const float inf = std::numeric_limits<float>::infinity();
    const float nan = std::numeric_limits<float>::quiet_NaN();
    Tensor logits(6, 5);
    logits.data = {
        0.0f, 2.0f,  1.0f,  2.0f,  -1.0f,  // tie: 1
        -inf, -inf,  -inf,  -inf,  -inf,   // all -inf: 0
        nan,  5.0f,  1.0f,  1.0f,  1.0f,   // NaN first: 0
        1.0f, nan,   3.0f,  nan,   3.0f,   // NaN elsewhere: 2
        -0.f, -1.0f, 0.0f,  -2.0f, -3.0f,  // -0 equals +0: 0
        -inf, -inf,  -5.0f, -inf,  9.0f,   // 4
    };
    const std::vector<std::int64_t> rows = {5, 0, 1, 2, 3, 4, 0};
    EXPECT_EQ(ops.argmax_rows(logits, rows), (std::vector<std::int32_t>{4, 1, 0, 0, 2, 0, 1}));
    Tensor picked = ops.rows_to_host(logits, std::vector<std::int64_t>{5, 0});
    ASSERT_EQ(picked.shape, (std::vector<std::int64_t>{2, 5}));
    EXPECT_EQ(picked.row(0)[4], 9.0f);
    EXPECT_EQ(picked.row(1)[1], 2.0f);
    EXPECT_TRUE(ops.argmax_rows(logits, {}).empty());
}

}  // namespace
}  // namespace dsserve::backend::cpu
