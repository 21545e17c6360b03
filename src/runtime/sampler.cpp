#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
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

std::int32_t Sampler::sample(std::span<const float> logits, const SamplingParams& p) {
    if (p.temperature <= 0.0f || p.top_k == 1) {
        return argmax(logits);
    }
    const std::size_t n = logits.size();
    std::vector<std::int32_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::size_t keep = n;
    if (p.top_k > 0 && static_cast<std::size_t>(p.top_k) < n) {
        keep = static_cast<std::size_t>(p.top_k);
    }
    // Sort only as much as the filters need: top-k bounds it; top-p and min-p need the head.
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep), order.end(),
                      [&](std::int32_t a, std::int32_t b) {
                          return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
                      });
    const float max_logit = logits[order[0]];
    std::vector<double> probs(keep);
    double total = 0.0;
    for (std::size_t i = 0; i < keep; ++i) {
        probs[i] = std::exp(static_cast<double>((logits[order[i]] - max_logit) / p.temperature));
        total += probs[i];
    }
    std::size_t cut = keep;
    if (p.top_p < 1.0f) {
        double cum = 0.0;
        for (std::size_t i = 0; i < keep; ++i) {
            cum += probs[i] / total;
            if (cum >= p.top_p) {
                cut = i + 1;
                break;
            }
        }
    }
    if (p.min_p > 0.0f) {
        double threshold = p.min_p * probs[0];
        std::size_t i = 1;
        while (i < cut && probs[i] >= threshold) {
            ++i;
        }
        cut = i;
    }
    double kept =
        std::accumulate(probs.begin(), probs.begin() + static_cast<std::ptrdiff_t>(cut), 0.0);
    std::uniform_real_distribution<double> uniform(0.0, kept);
    double u = uniform(rng_);
    for (std::size_t i = 0; i < cut; ++i) {
        u -= probs[i];
        if (u <= 0.0) {
            return order[i];
        }
    }
    return order[cut - 1];
}

}  // namespace dsserve::runtime
