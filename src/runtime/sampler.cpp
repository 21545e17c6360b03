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
