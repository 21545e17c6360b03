#include "runtime/sampler.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

namespace dsserve::runtime {

std::int32_t argmax(std::span<const float> logits) {
    std::size_t best = 0;
    for (std::size_t i = 1; i < logits.size(); ++i) {
        if (logits[i] > logits[best]) {
            best = i;
        }
    }
    return static_cast<std::int32_t>(best);
}

void apply_penalties(std::span<float> logits, const SamplingParams& p,
                     std::span<const std::int32_t> prompt, std::span<const std::int32_t> output) {
    const auto vocab = static_cast<std::int32_t>(logits.size());
    if (p.repetition_penalty != 1.0f) {
        std::vector<char> seen(logits.size(), 0);
        for (auto span : {prompt, output}) {
            for (std::int32_t t : span) {
                if (t >= 0 && t < vocab) {
                    seen[static_cast<std::size_t>(t)] = 1;
                }
            }
        }
        for (std::size_t t = 0; t < seen.size(); ++t) {
            if (seen[t]) {
                logits[t] = logits[t] > 0.0f ? logits[t] / p.repetition_penalty
                                             : logits[t] * p.repetition_penalty;
            }
        }
    }
    if (p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f) {
        std::vector<std::int32_t> sorted(output.begin(), output.end());
        std::sort(sorted.begin(), sorted.end());
        for (std::size_t i = 0; i < sorted.size();) {
            std::size_t j = i;
            while (j < sorted.size() && sorted[j] == sorted[i]) {
                ++j;
            }
            if (sorted[i] >= 0 && sorted[i] < vocab) {
                logits[static_cast<std::size_t>(sorted[i])] -=
                    p.frequency_penalty * static_cast<float>(j - i) + p.presence_penalty;
            }
            i = j;
        }
    }
    for (const auto& [token, bias] : p.logit_bias) {
        if (token >= 0 && token < vocab) {
            logits[static_cast<std::size_t>(token)] += bias;
        }
    }
}

TokenLogprobs logprobs_of(std::span<const float> logits, std::int32_t token, int top_k) {
    float max_logit = *std::max_element(logits.begin(), logits.end());
    double sum = 0.0;
    for (float l : logits) {
        sum += std::exp(static_cast<double>(l - max_logit));
    }
    const float log_z = max_logit + static_cast<float>(std::log(sum));
    TokenLogprobs out;
    out.logprob = logits[static_cast<std::size_t>(token)] - log_z;
    if (top_k > 0) {
        std::vector<std::int32_t> idx(logits.size());
        std::iota(idx.begin(), idx.end(), 0);
        auto k = std::min<std::size_t>(static_cast<std::size_t>(top_k), idx.size());
        std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(k), idx.end(),
                          [&](std::int32_t a, std::int32_t b) {
                              return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
                          });
        for (std::size_t i = 0; i < k; ++i) {
            out.top.emplace_back(idx[i], logits[static_cast<std::size_t>(idx[i])] - log_z);
        }
    }
    return out;
}

namespace {

// The order a draw walks the candidates in: higher logit first, lower id among equal logits. It
// is a strict total order, so every prefix of it is unique and both selections below agree on it.
struct MoreLikely {
    const float* logits;
    bool operator()(std::int32_t a, std::int32_t b) const {
        return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    }
};

// A token's unnormalized probability. The float difference and quotient before the double exp
// are the rounding this sampler has always used; changing them would change which token a seed
// draws near every boundary.
double weight(float logit, float max_logit, float temperature) {
    return std::exp(static_cast<double>((logit - max_logit) / temperature));
}

// Up to this top_k the candidates are simply sorted; beyond it, bucketed.
constexpr int kSortedTopK = 1024;

// A small top-k: the k best tokens in draw order, cut by top-p then min-p.
class SortedSelection {
public:
    SortedSelection(std::span<const float> logits, const SamplingParams& p) {
        const auto k = static_cast<std::size_t>(p.top_k);
        order_.resize(logits.size());
        std::iota(order_.begin(), order_.end(), 0);
        std::partial_sort(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(k),
                          order_.end(), MoreLikely{logits.data()});
        order_.resize(k);
        const float max_logit = logits[static_cast<std::size_t>(order_[0])];
        if (!std::isfinite(max_logit)) {
            order_.resize(1);
            probs_.assign(1, 1.0);
            kept_mass_ = 1.0;
            return;
        }
        probs_.resize(k);
        double total = 0.0;
        for (std::size_t i = 0; i < k; ++i) {
            probs_[i] =
                weight(logits[static_cast<std::size_t>(order_[i])], max_logit, p.temperature);
            total += probs_[i];
        }
        std::size_t cut = k;
        if (p.top_p < 1.0f) {
            double cum = 0.0;
            for (std::size_t i = 0; i < k; ++i) {
                cum += probs_[i] / total;
                if (cum >= p.top_p) {
                    cut = i + 1;
                    break;
                }
            }
        }
        if (p.min_p > 0.0f) {
            // probs_[0] is exp(0) = 1, so the threshold is min_p itself.
            const double threshold = p.min_p * probs_[0];
            std::size_t i = 1;
            while (i < cut && probs_[i] >= threshold) {
                ++i;
            }
            cut = i;
        }
        order_.resize(cut);
        probs_.resize(cut);
        kept_mass_ = std::accumulate(probs_.begin(), probs_.end(), 0.0);
    }

    double kept_mass() const { return kept_mass_; }

    std::int32_t draw(double u) const {
        for (std::size_t i = 0; i < order_.size(); ++i) {
            u -= probs_[i];
            if (u <= 0.0) {
                return order_[i];
            }
        }
        // Rounding left u a hair above zero: the least likely token that can be drawn at all.
        std::size_t i = order_.size() - 1;
        while (i > 0 && probs_[i] <= 0.0) {
            --i;
        }
        return order_[i];
    }

    std::vector<std::int32_t> members() const {
        std::vector<std::int32_t> ids = order_;
        std::sort(ids.begin(), ids.end());
        return ids;
    }

private:
    std::vector<std::int32_t> order_;  // the kept tokens, in draw order
    std::vector<double> probs_;        // their weights
    double kept_mass_ = 0.0;
};

// Top-p and min-p over a large candidate set (the whole vocabulary, or a large top-k) without
// sorting it. Candidates fall into buckets by how far their logit is below the best one; that key
// is monotone in the draw order, so the draw order is bucket after bucket, each in MoreLikely
// order. One pass computes every weight (top-p needs the total), then only the bucket where the
// top-p boundary falls and the one where the draw lands are gathered and sorted. Same weights,
// same cut and same walk as sorting everything; sums are taken per bucket, so a draw can differ
// from a full sort only where u or the top-p boundary lies within rounding of a token's edge.
class BucketedSelection {
public:
    // ids: the candidates; empty means every token.
    BucketedSelection(std::span<const float> logits, std::vector<std::int32_t> ids,
                      const SamplingParams& p)
        : logits_(logits), ids_(std::move(ids)), temperature_(p.temperature) {
        float lowest = std::numeric_limits<float>::infinity();
        std::int32_t best = -1;
        for_each([&](std::int32_t id, float l) {
            if (!std::isnan(l) && (best < 0 || MoreLikely{logits_.data()}(id, best))) {
                best = id;
            }
            if (std::isfinite(l) && l < lowest) {
                lowest = l;
            }
        });
        max_ = best < 0 ? NAN : logits_[static_cast<std::size_t>(best)];
        if (!std::isfinite(max_)) {
            degenerate_ = best < 0 ? (ids_.empty() ? 0 : ids_[0]) : best;
            kept_mass_ = 1.0;
            return;
        }
        // Tokens further down than this weigh under e^-64 of the best one and share the last
        // bucket, so that one far outlier does not stretch every bucket.
        const float spread = std::min(max_ - lowest, 64.0f * temperature_);
        scale_ = spread > 0.0f ? static_cast<float>(kBuckets) / spread : 0.0f;
        spread_ = spread;
        threshold_ = p.min_p;  // min_p times the best token's weight, exp(0) = 1
        for_each([&](std::int32_t, float l) {
            const double w = weight(l, max_, temperature_);
            if (w > 0.0) {
                total_ += w;
            }
            if (eligible(w)) {
                const int b = bucket_of(l);
                mass_[b] += w;
                ++count_[b];
            }
        });
        cut(p.top_p);
    }

    double kept_mass() const { return kept_mass_; }

    std::int32_t draw(double u) const {
        if (degenerate_ >= 0) {
            return degenerate_;
        }
        for (int b = 0; b < full_; ++b) {
            if (count_[b] == 0) {
                continue;
            }
            if (u - mass_[b] > 0.0) {
                u -= mass_[b];
                continue;
            }
            for (const auto& [id, w] : gather(b)) {
                u -= w;
                if (u <= 0.0) {
                    return id;
                }
            }
            // The bucket's sum said the draw lands here, its members' running sum fell a hair
            // short: carry on into the next bucket, as a walk over every token would.
        }
        for (const auto& [id, w] : partial_) {
            u -= w;
            if (u <= 0.0) {
                return id;
            }
        }
        if (!partial_.empty()) {
            return partial_.back().first;
        }
        for (int b = full_ - 1; b >= 0; --b) {
            if (count_[b] > 0) {
                return gather(b).back().first;
            }
        }
        return degenerate_;  // unreachable: the best token is always kept
    }

    std::vector<std::int32_t> members() const {
        if (degenerate_ >= 0) {
            return {degenerate_};
        }
        std::vector<std::int32_t> out;
        for_each([&](std::int32_t id, float l) {
            if (eligible(weight(l, max_, temperature_)) && bucket_of(l) < full_) {
                out.push_back(id);
            }
        });
        for (const auto& member : partial_) {
            out.push_back(member.first);
        }
        std::sort(out.begin(), out.end());
        return out;
    }

private:
    static constexpr int kBuckets = 2048;
    using Weighted = std::pair<std::int32_t, double>;

    template <typename F>
    void for_each(F&& f) const {
        if (ids_.empty()) {
            for (std::size_t i = 0; i < logits_.size(); ++i) {
                f(static_cast<std::int32_t>(i), logits_[i]);
            }
        } else {
            for (std::int32_t id : ids_) {
                f(id, logits_[static_cast<std::size_t>(id)]);
            }
        }
    }

    // Non-decreasing as the logit falls (float subtraction and scaling are monotone).
    int bucket_of(float logit) const {
        const float x = max_ - logit;
        if (!(x < spread_)) {
            return kBuckets - 1;
        }
        return std::min(static_cast<int>(x * scale_), kBuckets - 1);
    }

    // min-p drops tokens under the threshold; a zero weight (a logit of -inf: a banned token)
    // can never be drawn.
    bool eligible(double w) const { return w > 0.0 && w >= threshold_; }

    // The eligible tokens of bucket b in draw order, with their weights.
    std::vector<Weighted> gather(int b) const {
        std::vector<Weighted> out;
        out.reserve(static_cast<std::size_t>(count_[b]));
        for_each([&](std::int32_t id, float l) {
            if (bucket_of(l) == b) {
                const double w = weight(l, max_, temperature_);
                if (eligible(w)) {
                    out.emplace_back(id, w);
                }
            }
        });
        MoreLikely more{logits_.data()};
        std::sort(out.begin(), out.end(),
                  [&](const Weighted& a, const Weighted& c) { return more(a.first, c.first); });
        return out;
    }

    // The smallest prefix of the draw order whose probability reaches top_p (all of it when
    // top_p is 1), as whole buckets [0, full_) plus partial_, the head of bucket full_.
    void cut(float top_p) {
        full_ = kBuckets;
        if (top_p >= 1.0f) {
            for (int b = 0; b < kBuckets; ++b) {
                kept_mass_ += mass_[b];
            }
            return;
        }
        double cum = 0.0;
        for (int b = 0; b < kBuckets; ++b) {
            if (count_[b] == 0) {
                continue;
            }
            if (cum + mass_[b] / total_ < top_p) {
                cum += mass_[b] / total_;
                kept_mass_ += mass_[b];
                continue;
            }
            auto members = gather(b);
            for (std::size_t i = 0; i < members.size(); ++i) {
                cum += members[i].second / total_;
                if (cum >= top_p) {
                    members.resize(i + 1);
                    full_ = b;
                    for (const auto& member : members) {
                        kept_mass_ += member.second;
                    }
                    partial_ = std::move(members);
                    return;
                }
            }
            // Rounding: the bucket's sum reached top_p, its members' running sum did not.
            for (const auto& member : members) {
                kept_mass_ += member.second;
            }
        }
    }

    std::span<const float> logits_;
    std::vector<std::int32_t> ids_;
    float temperature_;
    float max_ = 0.0f;
    float spread_ = 0.0f;
    float scale_ = 0.0f;
    double threshold_ = 0.0;
    double total_ = 0.0;
    std::array<double, kBuckets> mass_{};
    std::array<std::int32_t, kBuckets> count_{};
    int full_ = kBuckets;
    std::vector<Weighted> partial_;
    double kept_mass_ = 0.0;
    std::int32_t degenerate_ = -1;  // a best logit of +-inf or NaN: only that token
};

// Calls f with the selection sample() uses for these params (not for greedy).
template <typename F>
auto with_selection(std::span<const float> logits, const SamplingParams& p, F&& f) {
    const bool top_k = p.top_k > 0 && static_cast<std::size_t>(p.top_k) < logits.size();
    if (top_k && p.top_k <= kSortedTopK) {
        return f(SortedSelection(logits, p));
    }
    std::vector<std::int32_t> ids;
    if (top_k) {
        ids.resize(logits.size());
        std::iota(ids.begin(), ids.end(), 0);
        std::nth_element(ids.begin(), ids.begin() + p.top_k - 1, ids.end(),
                         MoreLikely{logits.data()});
        ids.resize(static_cast<std::size_t>(p.top_k));
    }
    return f(BucketedSelection(logits, std::move(ids), p));
}

}  // namespace

bool is_greedy(const SamplingParams& p) {
    return p.temperature <= 0.0f || p.top_k == 1;
}

// uniform_real_distribution<double>(0, m) in libstdc++ is m * generate_canonical<double, 53>:
// drawing the canonical apart and scaling it here keeps every seed's tokens as they were.
double Sampler::next_canonical() {
    return std::generate_canonical<double, std::numeric_limits<double>::digits>(rng_);
}

std::int32_t pick(std::span<const float> logits, const SamplingParams& p, double canonical) {
    if (is_greedy(p)) {
        return argmax(logits);
    }
    return with_selection(logits, p, [&](const auto& selection) {
        return selection.draw(canonical * selection.kept_mass());
    });
}

std::int32_t Sampler::sample(std::span<const float> logits, const SamplingParams& p) {
    if (is_greedy(p)) {
        return argmax(logits);
    }
    return pick(logits, p, next_canonical());
}

std::vector<std::int32_t> sampling_support(std::span<const float> logits, const SamplingParams& p) {
    if (is_greedy(p)) {
        return {argmax(logits)};
    }
    return with_selection(logits, p, [](const auto& selection) { return selection.members(); });
}

}  // namespace dsserve::runtime
