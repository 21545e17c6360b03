// The sampler against a brute-force reference that sorts the whole vocabulary: the same kept set
// (top-k, top-p, min-p) and, from the same seed, the same tokens, on logits shaped to reach every
// path (small top-k sorted, large top-k and no top-k bucketed; ties, banned tokens, far outliers).
#include "runtime/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace dsserve::runtime {
namespace {

// Sorts every token, then cuts and walks the sorted list, as the definition in sampler.h reads.
class Reference {
public:
    Reference(const std::vector<float>& logits, const SamplingParams& p) {
        std::vector<std::int32_t> order(logits.size());
        std::iota(order.begin(), order.end(), 0);
        std::sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) {
            return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
        });
        std::size_t keep = order.size();
        if (p.top_k > 0 && static_cast<std::size_t>(p.top_k) < keep) {
            keep = static_cast<std::size_t>(p.top_k);
        }
        const float max_logit = logits[order[0]];
        std::vector<double> probs(keep);
        double total = 0.0;
        for (std::size_t i = 0; i < keep; ++i) {
            probs[i] =
                std::exp(static_cast<double>((logits[order[i]] - max_logit) / p.temperature));
            total += probs[i];
        }
        std::size_t cut = keep;
        double cum = 0.0;
        for (std::size_t i = 0; i < keep && p.top_p < 1.0f; ++i) {
            cum += probs[i] / total;
            if (cum >= p.top_p) {
                cut = i + 1;
                break;
            }
        }
        for (std::size_t i = 0; i < cut; ++i) {
            if (probs[i] < p.min_p * probs[0]) {
                cut = i;
                break;
            }
        }
        for (std::size_t i = 0; i < cut; ++i) {
            if (probs[i] > 0.0) {
                order_.push_back(order[i]);
                probs_.push_back(probs[i]);
                kept_ += probs[i];
            }
        }
    }

    std::vector<std::int32_t> support() const {
        auto ids = order_;
        std::sort(ids.begin(), ids.end());
        return ids;
    }

    std::int32_t draw(std::mt19937_64& rng) const {
        std::uniform_real_distribution<double> uniform(0.0, kept_);
        double u = uniform(rng);
        for (std::size_t i = 0; i < order_.size(); ++i) {
            u -= probs_[i];
            if (u <= 0.0) {
                return order_[i];
            }
        }
        return order_.back();
    }

private:
    std::vector<std::int32_t> order_;
    std::vector<double> probs_;
    double kept_ = 0.0;
};

std::vector<float> make_logits(const std::string& shape, std::size_t n, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> unit(0.0f, 1.0f);
    std::vector<float> logits(n);
    for (auto& l : logits) {
        l = unit(rng);
    }
    std::uniform_int_distribution<std::size_t> any(0, n - 1);
    if (shape == "peaked") {
        for (auto& l : logits) {
            l *= 2.0f;
        }
        for (int i = 0; i < 12; ++i) {
            logits[any(rng)] = 10.0f + 2.0f * unit(rng);
        }
    } else if (shape == "ties") {
        // Few distinct values: top-k and top-p cuts fall inside runs of equal logits.
        for (auto& l : logits) {
            l = std::round(l * 2.0f) / 2.0f;
        }
    } else if (shape == "banned") {
        for (int i = 0; i < static_cast<int>(n) / 4; ++i) {
            logits[any(rng)] = -INFINITY;
        }
    } else if (shape == "outliers") {
        // A spread far past the bucketing range on both sides of the bulk.
        logits[any(rng)] = -1000.0f;
        logits[any(rng)] = -90.0f;
        logits[any(rng)] = 25.0f;
    } else if (shape == "equal") {
        std::fill(logits.begin(), logits.end(), 0.25f);
    }
    return logits;
}

SamplingParams params(float temperature, float top_p, int top_k, float min_p) {
    SamplingParams p;
    p.temperature = temperature;
    p.top_p = top_p;
    p.top_k = top_k;
    p.min_p = min_p;
    return p;
}

std::string describe(const std::string& shape, const SamplingParams& p) {
    return shape + " T=" + std::to_string(p.temperature) + " top_p=" + std::to_string(p.top_p) +
           " top_k=" + std::to_string(p.top_k) + " min_p=" + std::to_string(p.min_p);
}

const std::vector<std::string> kShapes = {"flat", "peaked", "ties", "banned", "outliers", "equal"};

TEST(SamplerTest, SupportEqualsBruteForce) {
    const std::size_t n = 5000;
    int cases = 0;
    for (const auto& shape : kShapes) {
        const auto logits = make_logits(shape, n, 11);
        for (float t : {0.6f, 1.0f, 1.7f}) {
            for (float top_p : {0.05f, 0.5f, 0.9f, 0.95f, 0.999f, 1.0f}) {
                for (int top_k : {-1, 2, 40, 3000}) {
                    for (float min_p : {0.0f, 0.02f, 0.3f}) {
                        const auto p = params(t, top_p, top_k, min_p);
                        ASSERT_EQ(sampling_support(logits, p), Reference(logits, p).support())
                            << describe(shape, p);
                        ++cases;
                    }
                }
            }
        }
    }
    EXPECT_EQ(cases, 6 * 3 * 6 * 4 * 3);
}

// The top-p set alone, where its size is known: n equal logits give each token 1/n, so top_p
// between (m - 1)/n and m/n keeps exactly the m lowest ids.
TEST(SamplerTest, TopPOverEqualLogitsKeepsTheLowestIds) {
    const std::vector<float> logits(1000, 3.0f);
    for (int m : {1, 7, 500, 999}) {
        const auto p = params(1.0f, (static_cast<float>(m) - 0.5f) / 1000.0f, -1, 0.0f);
        std::vector<std::int32_t> expected(static_cast<std::size_t>(m));
        std::iota(expected.begin(), expected.end(), 0);
        EXPECT_EQ(sampling_support(logits, p), expected) << m;
    }
}

TEST(SamplerTest, SameSeedDrawsTheSameTokensAsBruteForce) {
    const std::size_t n = 5000;
    for (const auto& shape : kShapes) {
        const auto logits = make_logits(shape, n, 12);
        for (float top_p : {0.3f, 0.9f, 1.0f}) {
            for (int top_k : {-1, 40, 3000}) {
                for (float min_p : {0.0f, 0.05f}) {
                    const auto p = params(1.0f, top_p, top_k, min_p);
                    Reference ref(logits, p);
                    std::mt19937_64 ref_rng(99);
                    Sampler sampler(99);
                    std::vector<std::int32_t> got, want;
                    for (int i = 0; i < 100; ++i) {
                        got.push_back(sampler.sample(logits, p));
                        want.push_back(ref.draw(ref_rng));
                    }
                    ASSERT_EQ(got, want) << describe(shape, p);
                }
            }
        }
    }
}

// The full DeepSeek-V3.2 vocabulary: buckets then hold hundreds of tokens each.
TEST(SamplerTest, FullVocabularyMatchesBruteForce) {
    for (const std::string shape : {"flat", "peaked"}) {
        const auto logits = make_logits(shape, 129280, 13);
        for (float top_p : {0.9f, 0.95f}) {
            const auto p = params(1.0f, top_p, -1, 0.0f);
            Reference ref(logits, p);
            ASSERT_EQ(sampling_support(logits, p), ref.support()) << describe(shape, p);
            std::mt19937_64 ref_rng(5);
            Sampler sampler(5);
            for (int i = 0; i < 50; ++i) {
                ASSERT_EQ(sampler.sample(logits, p), ref.draw(ref_rng)) << describe(shape, p);
            }
        }
    }
}

// Drawn frequencies follow the kept distribution (a check on the walk that does not lean on the
// reference): 20,000 draws over four tokens of known probability.
TEST(SamplerTest, FrequenciesFollowTheProbabilities) {
    std::vector<float> logits(3000, -30.0f);
    const double w[] = {4.0, 2.0, 1.0, 1.0};
    for (int i = 0; i < 4; ++i) {
        logits[static_cast<std::size_t>(100 * i + 5)] = static_cast<float>(std::log(w[i]));
    }
    Sampler sampler(3);
    const auto p = params(1.0f, 0.999f, -1, 0.0f);
    std::vector<int> counts(4, 0);
    const int draws = 20000;
    for (int i = 0; i < draws; ++i) {
        const std::int32_t t = sampler.sample(logits, p);
        ASSERT_EQ((t - 5) % 100, 0) << t;
        counts[static_cast<std::size_t>((t - 5) / 100)]++;
    }
    for (int i = 0; i < 4; ++i) {
        const double expected = draws * w[i] / 8.0;
        // Five standard deviations of a binomial count.
        EXPECT_NEAR(counts[static_cast<std::size_t>(i)], expected,
                    5.0 * std::sqrt(expected * (1.0 - w[i] / 8.0)))
            << i;
    }
}

TEST(SamplerTest, GreedyIsArgmaxAndDrawsNothing) {
    const auto logits = make_logits("flat", 5000, 14);
    const auto best = argmax(logits);
    for (const auto& p : {params(0.0f, 0.9f, -1, 0.0f), params(1.0f, 1.0f, 1, 0.0f)}) {
        EXPECT_EQ(sampling_support(logits, p), std::vector<std::int32_t>{best});
        Sampler sampler(1);
        EXPECT_EQ(sampler.sample(logits, p), best);
    }
    // Greedy steps take no draw: a sampled step after them sees the seed's first number.
    Sampler a(8), b(8);
    a.sample(logits, params(0.0f, 1.0f, -1, 0.0f));
    const auto p = params(1.0f, 0.95f, -1, 0.0f);
    EXPECT_EQ(a.sample(logits, p), b.sample(logits, p));
}

// The draw taken apart: pick() with the sampler's next canonical gives sample()'s tokens from
// the same seed, for every path (sorted, bucketed, greedy, which draws nothing).
TEST(SamplerTest, PickWithTheNextCanonicalIsSample) {
    const std::size_t n = 5000;
    for (const auto& shape : kShapes) {
        const auto logits = make_logits(shape, n, 15);
        for (const auto& p : {params(1.0f, 0.9f, -1, 0.0f), params(0.7f, 0.95f, 40, 0.05f),
                              params(1.3f, 1.0f, 3000, 0.0f), params(0.5f, 0.5f, 2, 0.3f),
                              params(0.0f, 0.9f, -1, 0.0f), params(1.0f, 1.0f, 1, 0.0f)}) {
            Sampler whole(21), split(21);
            for (int i = 0; i < 50; ++i) {
                const std::int32_t want = whole.sample(logits, p);
                const std::int32_t got =
                    is_greedy(p) ? pick(logits, p, 0.5) : pick(logits, p, split.next_canonical());
                ASSERT_EQ(got, want) << describe(shape, p) << " draw " << i;
            }
            // Both generators are at the same place: greedy steps took nothing from either.
            EXPECT_EQ(whole.next_canonical(), split.next_canonical()) << describe(shape, p);
        }
    }
}

// What sample() relies on: the library's uniform over [0, m) is m times the canonical draw,
// bit for bit.
TEST(SamplerTest, TheUniformIsTheCanonicalScaled) {
    std::mt19937_64 rng(77);
    Sampler sampler(77);
    for (int i = 0; i < 1000; ++i) {
        const double m = 0.37 + 3.1 * i;
        std::uniform_real_distribution<double> uniform(0.0, m);
        const double u = uniform(rng);
        const double c = sampler.next_canonical();
        ASSERT_GE(c, 0.0);
        ASSERT_LT(c, 1.0);
        ASSERT_EQ(u, m * c) << i;
    }
}

// The walk by hand: weights 4:2:1:1 (ids 9, 2, 3, 7; ids 3 and 7 tie, so 3 comes first) split
// [0, 1) at 1/2, 3/4 and 7/8; 0 gives the best token and a draw just under 1 the last.
TEST(SamplerTest, PickWalksTheKeptTokensInDrawOrder) {
    std::vector<float> logits(12, -INFINITY);
    logits[9] = std::log(4.0f);
    logits[2] = std::log(2.0f);
    logits[3] = 0.0f;
    logits[7] = 0.0f;
    const auto p = params(1.0f, 1.0f, -1, 0.0f);
    const std::vector<std::pair<double, std::int32_t>> cases = {
        {0.0, 9},  {0.3, 9},  {0.49, 9},
        {0.51, 2}, {0.74, 2}, {0.76, 3},
        {0.86, 3}, {0.89, 7}, {std::nextafter(1.0, 0.0), 7}};
    for (const auto& [canonical, want] : cases) {
        EXPECT_EQ(pick(logits, p, canonical), want) << canonical;
    }
    // top_k 2 keeps ids 9 and 2 (2/3 and 1/3 of the kept mass).
    const auto k2 = params(1.0f, 1.0f, 2, 0.0f);
    EXPECT_EQ(pick(logits, k2, 0.6), 9);
    EXPECT_EQ(pick(logits, k2, 0.7), 2);
}

}  // namespace
}  // namespace dsserve::runtime
