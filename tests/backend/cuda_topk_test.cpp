// The device selections against their host versions, exactly: the row top-k against
// backend::top_positions and the MoE routing against model::route_tokens, on random scores and
// on inputs built for ties. Routing inputs keep distinct biased scores at least 1e-6 apart: the
// device's expf may differ from libm's by an ulp, which must not reorder two experts. Runs only
// where a CUDA device is visible (ctest label gpu).
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "backend/common.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/topk.h"
#include "cuda_device_array.h"
#include "model/moe_routing.h"

namespace dsserve::backend::cuda {
namespace {

class CudaTopkTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (cuda_device_count() == 0) {
            GTEST_SKIP() << "no CUDA device";
        }
    }

    // ---- Row top-k ----

    // Runs launch_row_topk on rows of scores (row r's count is its size) and returns the output
    // rows. Scores past a row's count are FLT_MAX, so that reading them would change the result;
    // output entries past the last row are checked untouched.
    std::vector<std::vector<std::int32_t>> device_topk(const std::vector<std::vector<float>>& rows,
                                                       int top_k) {
        std::size_t longest = 0;
        for (const auto& r : rows) {
            longest = std::max(longest, r.size());
        }
        const std::int64_t ld = static_cast<std::int64_t>(longest) + 3;
        std::vector<float> score(rows.size() * static_cast<std::size_t>(ld), FLT_MAX);
        std::vector<std::int32_t> count;
        for (std::size_t r = 0; r < rows.size(); ++r) {
            std::copy(
                rows[r].begin(), rows[r].end(),
                score.begin() + static_cast<std::ptrdiff_t>(r * static_cast<std::size_t>(ld)));
            count.push_back(static_cast<std::int32_t>(rows[r].size()));
        }
        constexpr std::int32_t kUnwritten = 0x5a5a5a5a;
        constexpr std::size_t kGuard = 64;
        const std::size_t n_out = rows.size() * static_cast<std::size_t>(top_k);
        DeviceArray<float> d_score(score);
        DeviceArray<std::int32_t> d_count(count);
        DeviceArray<std::int32_t> d_out(std::vector<std::int32_t>(n_out + kGuard, kUnwritten));
        launch_row_topk(d_score.get(), ld, d_count.get(), static_cast<int>(rows.size()), top_k,
                        d_out.get(), nullptr);
        const auto out = d_out.to_host();
        for (std::size_t i = n_out; i < out.size(); ++i) {
            EXPECT_EQ(out[i], kUnwritten) << "written past the last row at " << i;
        }
        std::vector<std::vector<std::int32_t>> got;
        for (std::size_t r = 0; r < rows.size(); ++r) {
            const auto* begin = out.data() + r * static_cast<std::size_t>(top_k);
            got.emplace_back(begin, begin + top_k);
        }
        return got;
    }

    // Every row's selection equals top_positions', padded with -1 to top_k.
    void expect_topk_matches(const std::vector<std::vector<float>>& rows, int top_k,
                             const std::string& what) {
        const auto got = device_topk(rows, top_k);
        int differing = 0;
        for (std::size_t r = 0; r < rows.size(); ++r) {
            auto want = top_positions(rows[r], top_k);
            want.resize(static_cast<std::size_t>(top_k), -1);
            if (got[r] != want) {
                std::size_t at = 0;
                while (got[r][at] == want[at]) {
                    ++at;
                }
                if (++differing <= 3) {
                    ADD_FAILURE() << what << ": row " << r << " (count " << rows[r].size()
                                  << ", top " << top_k << ") differs first at " << at << ": got "
                                  << got[r][at] << ", want " << want[at];
                }
            }
        }
        EXPECT_EQ(differing, 0) << what << ": rows differing of " << rows.size();
    }

    std::vector<float> normal_row(std::size_t n, float scale = 1.0f) {
        std::normal_distribution<float> nd(0.0f, scale);
        std::vector<float> row(n);
        for (float& v : row) {
            v = nd(rng_);
        }
        return row;
    }

    // Scores drawn from a few values, so that the k-th largest is tied many times over;
    // -0.0 and +0.0 are both among them and must tie.
    std::vector<float> tied_row(std::size_t n) {
        static const float kValues[] = {-0.0f, 0.0f, 1.0f, -1.0f, 0.5f, 3.0f, 1e-40f, -2.0f};
        std::uniform_int_distribution<int> pick(0, 7);
        std::vector<float> row(n);
        for (float& v : row) {
            v = kValues[pick(rng_)];
        }
        return row;
    }

    // ---- Routing ----

    static model::ModelConfig routing_config(int experts, int n_group, int topk_group, int top_k,
                                             bool norm = true, double scaling = 2.5) {
        model::ModelConfig c;
        c.n_routed_experts = experts;
        c.n_group = n_group;
        c.topk_group = topk_group;
        c.num_experts_per_tok = top_k;
        c.norm_topk_prob = norm;
        c.routed_scaling_factor = scaling;
        return c;
    }

    // The same experts in the same order as route_tokens; weights to a few ulps (expf).
    static void expect_routing_matches(const model::Tensor& logits, const std::vector<float>& bias,
                                       const model::ModelConfig& c, const std::string& what) {
        const auto want = model::route_tokens(logits, bias, c);
        const auto tokens = static_cast<int>(logits.rows());
        const std::size_t n = want.experts.size();
        DeviceArray<float> d_logits(logits.data), d_bias(bias);
        // Rows of `width` picks (top_k, or top_k + 1 with the shared expert), to the host.
        auto route = [&](bool shared, std::size_t width) {
            const std::size_t size = n / static_cast<std::size_t>(want.top_k) * width;
            DeviceArray<std::int32_t> d_experts(std::vector<std::int32_t>(size, -7));
            DeviceArray<float> d_weights(std::vector<float>(size, NAN));
            launch_moe_route(d_logits.get(), d_bias.get(), tokens, c.n_routed_experts, c.n_group,
                             c.topk_group, c.num_experts_per_tok, c.norm_topk_prob,
                             static_cast<float>(c.routed_scaling_factor), shared, d_experts.get(),
                             d_weights.get(), nullptr);
            return std::pair{d_experts.to_host(), d_weights.to_host()};
        };
        const auto k = static_cast<std::size_t>(want.top_k);
        const auto [experts, weights] = route(false, k);
        int differing = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const bool same = experts[i] == want.experts[i] &&
                              std::abs(weights[i] - want.weights[i]) <=
                                  4e-6f * std::max(1.0f, std::abs(want.weights[i]));
            if (!same && ++differing <= 3) {
                ADD_FAILURE() << what << ": token " << i / static_cast<std::size_t>(want.top_k)
                              << " pick " << i % static_cast<std::size_t>(want.top_k)
                              << ": got expert " << experts[i] << " weight " << weights[i]
                              << ", want " << want.experts[i] << " weight " << want.weights[i];
            }
        }
        EXPECT_EQ(differing, 0) << what;

        // With the shared expert: the same picks, then expert n_routed_experts at weight 1.
        const std::size_t rows = n / k, wide = k + 1;
        const auto [se, sw] = route(true, wide);
        for (std::size_t r = 0; r < rows; ++r) {
            for (std::size_t j = 0; j < k; ++j) {
                EXPECT_EQ(se[r * wide + j], experts[r * k + j]) << what << ": token " << r;
                EXPECT_EQ(sw[r * wide + j], weights[r * k + j]) << what << ": token " << r;
            }
            EXPECT_EQ(se[r * wide + k], c.n_routed_experts) << what << ": token " << r;
            EXPECT_EQ(sw[r * wide + k], 1.0f) << what << ": token " << r;
        }
        expect_routing_lays_out(d_logits.get(), d_bias.get(), tokens, c, se, sw, what);
    }

    // The routing launch that also lays its picks out for the grouped GEMV (launch_moe_route with
    // a layout), twice over (the arrival counter must be reset), against the layout worked out
    // here from the picks: a counting sort by expert, ties in assignment order.
    static void expect_routing_lays_out(const float* d_logits, const float* d_bias, int tokens,
                                        const model::ModelConfig& c,
                                        const std::vector<std::int32_t>& picks,
                                        const std::vector<float>& weights,
                                        const std::string& what) {
        const int width = c.num_experts_per_tok + 1, num_experts = c.n_routed_experts + 1;
        const auto n = static_cast<std::size_t>(tokens) * static_cast<std::size_t>(width);
        const std::size_t slots = std::min<std::size_t>(n, static_cast<std::size_t>(num_experts));
        // Host layout.
        std::vector<std::int32_t> want_slot_expert, want_slot_start{0};
        std::vector<std::int32_t> row_of(n), want_row_token(n), want_pos(n);
        std::vector<float> want_weight(n);
        for (int e = 0; e < num_experts; ++e) {
            const auto before = want_slot_start.back();
            std::int32_t rows = 0;
            for (std::size_t i = 0; i < n; ++i) {
                if (picks[i] == e) {
                    row_of[i] = before + rows++;
                    want_row_token[static_cast<std::size_t>(row_of[i])] =
                        static_cast<std::int32_t>(i / static_cast<std::size_t>(width));
                }
            }
            if (rows > 0) {
                want_slot_expert.push_back(e);
                want_slot_start.push_back(before + rows);
            }
        }
        for (std::size_t r = 0; r < n; r += static_cast<std::size_t>(width)) {
            std::vector<std::size_t> order(static_cast<std::size_t>(width));
            std::iota(order.begin(), order.end(), r);
            std::stable_sort(order.begin(), order.end(),
                             [&](std::size_t a, std::size_t b) { return picks[a] < picks[b]; });
            for (std::size_t j = 0; j < order.size(); ++j) {
                want_pos[r + j] = row_of[order[j]];
                want_weight[r + j] = weights[order[j]];
            }
        }

        DeviceArray<std::int32_t> d_experts(n), d_count(1), d_slot_expert(slots),
            d_slot_start(slots + 1), d_row_token(n), d_pos(n),
            arrived(std::vector<std::int32_t>{0});
        DeviceArray<float> d_weights(n), d_weight(n);
        for (int launch = 0; launch < 2; ++launch) {
            for (auto* a : {&d_count, &d_slot_expert, &d_slot_start, &d_row_token, &d_pos}) {
                a->poison();
            }
            d_weight.poison();
            const MoeLayout layout{d_count.get(),     d_slot_expert.get(), d_slot_start.get(),
                                   d_row_token.get(), d_pos.get(),         d_weight.get()};
            launch_moe_route(d_logits, d_bias, tokens, c.n_routed_experts, c.n_group, c.topk_group,
                             c.num_experts_per_tok, c.norm_topk_prob,
                             static_cast<float>(c.routed_scaling_factor), true, d_experts.get(),
                             d_weights.get(), nullptr, &layout, arrived.get());
            const std::string at = what + ", launch " + std::to_string(launch);
            EXPECT_EQ(d_experts.to_host(), picks) << at;
            const auto count = d_count.to_host()[0];
            ASSERT_EQ(count, static_cast<std::int32_t>(want_slot_expert.size())) << at;
            auto slot_expert = d_slot_expert.to_host();
            auto slot_start = d_slot_start.to_host();
            slot_expert.resize(static_cast<std::size_t>(count));
            slot_start.resize(static_cast<std::size_t>(count) + 1);
            EXPECT_EQ(slot_expert, want_slot_expert) << at;
            EXPECT_EQ(slot_start, want_slot_start) << at;
            EXPECT_EQ(d_row_token.to_host(), want_row_token) << at;
            EXPECT_EQ(d_pos.to_host(), want_pos) << at;
            EXPECT_EQ(d_weight.to_host(), want_weight) << at;
            EXPECT_EQ(arrived.to_host()[0], 0) << at << ": the arrival counter is left set";
        }
    }

    // Logits whose biased scores, and group scores, are pairwise at least kGap apart (redrawn
    // per token until they are), so that rounding cannot reorder them.
    model::Tensor separated_logits(int tokens, const std::vector<float>& bias,
                                   const model::ModelConfig& c) {
        constexpr float kGap = 1e-6f;
        const int experts = c.n_routed_experts, per_group = experts / c.n_group;
        model::Tensor logits(tokens, experts);
        std::normal_distribution<float> nd(0.0f, 2.0f);
        for (int t = 0; t < tokens; ++t) {
            for (int attempt = 0;; ++attempt) {
                EXPECT_LT(attempt, 1000) << "no well-separated logits found";
                if (attempt >= 1000) {
                    return logits;
                }
                float* row = logits.row(t);
                std::vector<float> choice(static_cast<std::size_t>(experts));
                for (int e = 0; e < experts; ++e) {
                    row[e] = nd(rng_);
                    choice[static_cast<std::size_t>(e)] =
                        1.0f / (1.0f + std::exp(-row[e])) + bias[static_cast<std::size_t>(e)];
                }
                std::vector<float> group;
                for (int g = 0; g < c.n_group; ++g) {
                    std::vector<float> v(choice.begin() + g * per_group,
                                         choice.begin() + (g + 1) * per_group);
                    std::sort(v.rbegin(), v.rend());
                    group.push_back(v[0] + v[1]);
                }
                if (min_gap(choice) >= kGap && min_gap(group) >= kGap) {
                    break;
                }
            }
        }
        return logits;
    }

    static float min_gap(std::vector<float> v) {
        std::sort(v.begin(), v.end());
        float gap = INFINITY;
        for (std::size_t i = 1; i < v.size(); ++i) {
            gap = std::min(gap, v[i] - v[i - 1]);
        }
        return gap;
    }

    std::vector<float> random_bias(int experts) {
        std::uniform_real_distribution<float> ud(-0.2f, 0.2f);
        std::vector<float> bias(static_cast<std::size_t>(experts));
        for (float& b : bias) {
            b = ud(rng_);
        }
        return bias;
    }

    std::mt19937 rng_{11};
};

TEST_F(CudaTopkTest, RowTopKCountsAroundTopK) {
    for (int top_k : {1, 16, 2048}) {
        std::vector<std::vector<float>> rows;
        for (int count : {0, 1, 2, top_k - 1, top_k, top_k + 1, 2 * top_k, 1000, 1024, 1025, 5000,
                          3 * top_k + 17}) {
            rows.push_back(normal_row(static_cast<std::size_t>(std::max(count, 0))));
        }
        expect_topk_matches(rows, top_k, "top " + std::to_string(top_k));
    }
}

TEST_F(CudaTopkTest, RowTopKLongDecodeRow) {
    const auto row = normal_row(163840);
    for (int top_k : {2048, 1, 4096, 163839}) {
        expect_topk_matches({row}, top_k, "163840 scores, top " + std::to_string(top_k));
    }
    // Scores packed in [1, 1.001): equal in their first digits, so every pass is needed.
    std::uniform_real_distribution<float> ud(1.0f, 1.001f);
    std::vector<float> narrow(163840);
    for (float& v : narrow) {
        v = ud(rng_);
    }
    expect_topk_matches({narrow}, 2048, "narrow range");
}

TEST_F(CudaTopkTest, RowTopKManyRowsOfDifferentCounts) {
    // As in prefill: thousands of rows, each seeing a different number of keys.
    std::uniform_int_distribution<int> count(0, 6000);
    std::vector<std::vector<float>> rows;
    for (int r = 0; r < 4000; ++r) {
        const int n = r % 50 == 0 ? 2048 : r % 50 == 1 ? 2049 : count(rng_);
        rows.push_back(normal_row(static_cast<std::size_t>(n), 0.1f + static_cast<float>(r % 7)));
    }
    expect_topk_matches(rows, 2048, "4000 rows");
}

TEST_F(CudaTopkTest, RowTopKExactTiesGoToTheLowerPosition) {
    for (int top_k : {1, 7, 64, 2048}) {
        std::vector<std::vector<float>> rows;
        for (int count : {top_k + 1, 3 * top_k, 10000}) {
            rows.push_back(tied_row(static_cast<std::size_t>(count)));
        }
        rows.emplace_back(5000, 1.0f);  // all equal: the first top_k positions
        std::vector<float> zeros(5000);
        std::uniform_int_distribution<int> coin(0, 1);
        for (float& v : zeros) {
            v = coin(rng_) != 0 ? -0.0f : 0.0f;
        }
        rows.push_back(zeros);
        expect_topk_matches(rows, top_k, "ties, top " + std::to_string(top_k));
    }
    expect_topk_matches({tied_row(163840)}, 2048, "163840 tied scores");
}

TEST_F(CudaTopkTest, RowTopKWideRangeAndInfinities) {
    std::normal_distribution<float> nd;
    std::uniform_int_distribution<int> exponent(-140, 120);
    std::uniform_int_distribution<int> special(0, 99);
    std::vector<std::vector<float>> rows;
    for (int count : {3000, 40000}) {
        std::vector<float> row(static_cast<std::size_t>(count));
        for (float& v : row) {
            const int s = special(rng_);
            v = s == 0 ? INFINITY : s == 1 ? -INFINITY : std::ldexp(nd(rng_), exponent(rng_));
        }
        rows.push_back(row);
    }
    expect_topk_matches(rows, 2048, "wide range");
}

TEST_F(CudaTopkTest, RowTopKSurvivesNaN) {
    // No expected set: NaN is outside the contract. The kernel must still finish and write
    // top_k distinct in-range positions in ascending order.
    auto row = normal_row(10000);
    for (std::size_t i = 0; i < row.size(); i += 3) {
        row[i] = i % 2 == 0 ? NAN : -NAN;
    }
    const auto got = device_topk({row, std::vector<float>(5000, NAN)}, 2048);
    for (const auto& r : got) {
        EXPECT_TRUE(std::is_sorted(r.begin(), r.end()));
        EXPECT_EQ(std::adjacent_find(r.begin(), r.end()), r.end());
        EXPECT_GE(r.front(), 0);
        EXPECT_LT(r.back(), 10000);
    }
}

// The chosen positions as slots of each row's table, -1 past a short row's count; with counts
// given, each row's listed count min(count, top_k) too (what a graph step's attention reads).
TEST_F(CudaTopkTest, PositionsToSlotsMapsThroughEachRowsTable) {
    constexpr int kTopK = 4;
    const std::vector<std::int32_t> chosen = {0, 2, 5, 7, /**/ 0, 1, -1, -1, /**/ 3, 4, 6, 9};
    const std::vector<std::int32_t> base = {0, 10, 20};
    const std::vector<std::int32_t> count = {9, 2, 30};
    std::vector<std::int32_t> table(40);
    for (std::size_t i = 0; i < table.size(); ++i) {
        table[i] = static_cast<std::int32_t>(1000 + 3 * i);
    }
    DeviceArray<std::int32_t> d_chosen(chosen), d_base(base), d_count(count), d_table(table);
    for (bool with_counts : {false, true}) {
        DeviceArray<std::int32_t> d_out(std::vector<std::int32_t>(chosen.size(), 77));
        DeviceArray<std::int32_t> d_listed(std::vector<std::int32_t>(3, 77));
        launch_positions_to_slots(d_chosen.get(), 3, kTopK, d_table.get(), d_base.get(),
                                  d_out.get(), nullptr, with_counts ? d_count.get() : nullptr,
                                  with_counts ? d_listed.get() : nullptr);
        std::vector<std::int32_t> want;
        for (std::size_t i = 0; i < chosen.size(); ++i) {
            const std::int32_t p = chosen[i];
            want.push_back(p < 0 ? -1 : table[static_cast<std::size_t>(base[i / kTopK] + p)]);
        }
        EXPECT_EQ(d_out.to_host(), want);
        EXPECT_EQ(d_listed.to_host(), with_counts ? (std::vector<std::int32_t>{4, 2, 4})
                                                  : (std::vector<std::int32_t>{77, 77, 77}));
    }
}

TEST_F(CudaTopkTest, MoeRouteMatchesCpuOnDeepSeekShape) {
    for (bool norm : {true, false}) {
        const auto c = routing_config(256, 8, 4, 8, norm, 2.5);
        const auto bias = random_bias(256);
        for (int tokens : {1, 301}) {
            expect_routing_matches(separated_logits(tokens, bias, c), bias, c,
                                   "256/8/4/8 norm " + std::to_string(norm) + ", " +
                                       std::to_string(tokens) + " tokens");
        }
    }
}

TEST_F(CudaTopkTest, MoeRouteMatchesCpuOnSmallPresets) {
    // Tiny presets, one group (plain top-k), and more experts wanted than the kept groups hold
    // (the rest are picked among the masked ones, lowest index first, as on the host).
    for (const auto& c : {routing_config(16, 4, 2, 4), routing_config(16, 1, 1, 4, true, 1.0),
                          routing_config(64, 8, 3, 6, false, 1.5), routing_config(16, 4, 1, 6)}) {
        const auto bias = random_bias(c.n_routed_experts);
        expect_routing_matches(separated_logits(77, bias, c), bias, c,
                               std::to_string(c.n_routed_experts) + "/" +
                                   std::to_string(c.n_group) + "/" + std::to_string(c.topk_group) +
                                   "/" + std::to_string(c.num_experts_per_tok));
    }
}

TEST_F(CudaTopkTest, MoeRouteBreaksExactTiesLikeCpu) {
    for (const auto& c :
         {routing_config(256, 8, 4, 8), routing_config(16, 4, 2, 4), routing_config(16, 4, 1, 6)}) {
        const int experts = c.n_routed_experts, per_group = experts / c.n_group;
        const std::string name = std::to_string(experts) + "/" + std::to_string(c.n_group);
        const int tokens = 40;
        // Every expert equal: the first groups, the first experts, in index order.
        model::Tensor same(tokens, experts);
        for (int t = 0; t < tokens; ++t) {
            std::fill_n(same.row(t), experts, static_cast<float>(t % 5) - 2.0f);
        }
        const std::vector<float> zero(static_cast<std::size_t>(experts), 0.0f);
        expect_routing_matches(same, zero, c, name + " all equal");
        const auto r = model::route_tokens(same, zero, c);
        for (int k = 0; k < c.num_experts_per_tok; ++k) {
            EXPECT_EQ(r.experts[static_cast<std::size_t>(k)], k) << "the host's own tie rule";
        }
        // Three logit values, so experts and groups tie often; their sigmoids and pair sums are
        // far apart, so only exact ties occur. Then the same with a bias constant per group,
        // which ties groups only with groups of equal bias.
        static const float kLogits[] = {-1.0f, 0.5f, 2.0f};
        std::uniform_int_distribution<int> pick(0, 2);
        model::Tensor few(tokens, experts);
        for (float& v : few.data) {
            v = kLogits[pick(rng_)];
        }
        expect_routing_matches(few, zero, c, name + " three values");
        std::vector<float> group_bias(static_cast<std::size_t>(experts));
        for (int e = 0; e < experts; ++e) {
            group_bias[static_cast<std::size_t>(e)] = (e / per_group) % 2 == 0 ? 0.0f : 0.0625f;
        }
        expect_routing_matches(few, group_bias, c, name + " three values, group bias");
    }
}

// The tiled layout (any number of assignments) against what it promises: every assignment in
// its expert's rows, experts' rows starting on tiles and padded with -1, the tile list, each
// token's rows in ascending expert order with their weights, and the counts left zero (two
// launches). Picks are drawn skewed (half the assignments to a few experts), with distinct
// experts within a token, as routing gives.
TEST_F(CudaTopkTest, MoeTileLayoutPlacesEveryAssignment) {
    for (const auto& [tokens, width, num_experts] :
         {std::tuple{1, 9, 257}, std::tuple{63, 9, 257}, std::tuple{3001, 9, 257},
          std::tuple{9000, 9, 257}, std::tuple{500, 5, 17}, std::tuple{130, 1, 1}}) {
        const std::string what = std::to_string(tokens) + " tokens x " + std::to_string(width) +
                                 " of " + std::to_string(num_experts);
        const auto n = static_cast<std::size_t>(tokens) * static_cast<std::size_t>(width);
        std::vector<std::int32_t> picks(n);
        std::vector<float> weights(n);
        std::uniform_int_distribution<int> any(0, num_experts - 1),
            few(0, std::min(3, num_experts - 1));
        std::uniform_real_distribution<float> ud(0.0f, 1.0f);
        for (std::size_t t = 0; t < n; t += static_cast<std::size_t>(width)) {
            for (std::size_t k = 0; k < static_cast<std::size_t>(width); ++k) {
                std::int32_t e = 0;
                do {
                    e = ud(rng_) < 0.5f ? few(rng_) : any(rng_);
                } while (std::find(picks.begin() + static_cast<std::ptrdiff_t>(t),
                                   picks.begin() + static_cast<std::ptrdiff_t>(t + k),
                                   e) != picks.begin() + static_cast<std::ptrdiff_t>(t + k));
                picks[t + k] = e;
                weights[t + k] = ud(rng_);
            }
        }
        std::vector<std::int64_t> count(static_cast<std::size_t>(num_experts));
        for (std::int32_t e : picks) {
            ++count[static_cast<std::size_t>(e)];
        }
        const std::int64_t bound = moe_tiles_bound(static_cast<std::int64_t>(n), num_experts);
        const auto rows = static_cast<std::size_t>(bound * kMoeTileRows);
        DeviceArray<std::int32_t> d_picks(picks),
            d_counts(std::vector<std::int32_t>(static_cast<std::size_t>(num_experts), 0)),
            d_start(static_cast<std::size_t>(num_experts)), d_tiles(1),
            d_tile_expert(static_cast<std::size_t>(bound)), d_row_token(rows), d_pos(n);
        DeviceArray<float> d_weights(weights), d_weight(n);
        for (int launch = 0; launch < 2; ++launch) {
            const std::string at = what + ", launch " + std::to_string(launch);
            for (auto* a : {&d_start, &d_tiles, &d_tile_expert, &d_row_token, &d_pos}) {
                a->poison();
            }
            d_weight.poison();
            MoeTileLayout layout;
            layout.counts = d_counts.get();
            layout.start = d_start.get();
            layout.tiles = d_tiles.get();
            layout.tile_expert = d_tile_expert.get();
            layout.row_token = d_row_token.get();
            layout.combine_pos = d_pos.get();
            layout.combine_weight = d_weight.get();
            launch_moe_tile_layout(d_picks.get(), d_weights.get(), tokens, width, num_experts,
                                   layout, nullptr);
            const auto tiles = d_tiles.to_host()[0];
            const auto start = d_start.to_host();
            const auto tile_expert = d_tile_expert.to_host();
            const auto row_token = d_row_token.to_host();
            const auto pos = d_pos.to_host();
            const auto weight = d_weight.to_host();
            // The tile list and where each expert starts.
            std::vector<std::int32_t> want_tiles;
            for (int e = 0; e < num_experts; ++e) {
                const auto c = count[static_cast<std::size_t>(e)];
                if (c > 0) {
                    EXPECT_EQ(start[static_cast<std::size_t>(e)],
                              static_cast<std::int32_t>(want_tiles.size()) * kMoeTileRows)
                        << at << ": expert " << e;
                }
                want_tiles.insert(want_tiles.end(),
                                  static_cast<std::size_t>((c + kMoeTileRows - 1) / kMoeTileRows),
                                  e);
            }
            ASSERT_EQ(tiles, static_cast<std::int32_t>(want_tiles.size())) << at;
            ASSERT_LE(tiles, bound) << at;
            EXPECT_EQ(std::vector<std::int32_t>(tile_expert.begin(), tile_expert.begin() + tiles),
                      want_tiles)
                << at;
            // Each expert's rows hold its assignments' tokens (in any order), then padding.
            for (int e = 0; e < num_experts; ++e) {
                const auto c = count[static_cast<std::size_t>(e)];
                if (c == 0) {
                    continue;
                }
                std::vector<std::int32_t> want, got;
                for (std::size_t i = 0; i < n; ++i) {
                    if (picks[i] == e) {
                        want.push_back(
                            static_cast<std::int32_t>(i / static_cast<std::size_t>(width)));
                    }
                }
                const auto first = static_cast<std::size_t>(start[static_cast<std::size_t>(e)]);
                got.assign(row_token.begin() + static_cast<std::ptrdiff_t>(first),
                           row_token.begin() + static_cast<std::ptrdiff_t>(first) + c);
                std::sort(got.begin(), got.end());
                EXPECT_EQ(got, want) << at << ": expert " << e;
                const auto padded = (c + kMoeTileRows - 1) / kMoeTileRows * kMoeTileRows;
                for (auto r = c; r < padded; ++r) {
                    EXPECT_EQ(row_token[first + static_cast<std::size_t>(r)], -1)
                        << at << ": expert " << e << " padding row " << r;
                }
            }
            // Each token's rows: its own, in ascending expert order, each with its weight.
            for (std::size_t t = 0; t < n; t += static_cast<std::size_t>(width)) {
                std::vector<std::size_t> order(static_cast<std::size_t>(width));
                std::iota(order.begin(), order.end(), t);
                std::sort(order.begin(), order.end(),
                          [&](std::size_t a, std::size_t b) { return picks[a] < picks[b]; });
                for (std::size_t j = 0; j < order.size(); ++j) {
                    const auto row = pos[t + j];
                    ASSERT_TRUE(row >= 0 && static_cast<std::size_t>(row) < rows) << at;
                    EXPECT_EQ(row_token[static_cast<std::size_t>(row)],
                              static_cast<std::int32_t>(t / static_cast<std::size_t>(width)))
                        << at << ": token " << t / static_cast<std::size_t>(width);
                    EXPECT_EQ(tile_expert[static_cast<std::size_t>(row / kMoeTileRows)],
                              picks[order[j]])
                        << at;
                    EXPECT_EQ(weight[t + j], weights[order[j]]) << at;
                }
            }
            EXPECT_EQ(d_counts.to_host(),
                      std::vector<std::int32_t>(static_cast<std::size_t>(num_experts), 0))
                << at << ": counts left set";
        }
    }
}

}  // namespace
}  // namespace dsserve::backend::cuda
