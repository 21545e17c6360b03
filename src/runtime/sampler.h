// Turning a row of logits into a token: greedy at temperature 0, otherwise temperature, top-k,
// top-p and min-p filtering and a draw from a per-request generator, so the same seed gives the
// same tokens.
#pragma once

#include <cstdint>
#include <random>
#include <span>

namespace dsserve::runtime {

struct SamplingParams {
    float temperature = 1.0f;
    float top_p = 1.0f;
    int top_k = -1;  // -1: all
    float min_p = 0.0f;
};

class Sampler {
public:
    explicit Sampler(std::uint64_t seed) : rng_(seed) {}
    std::int32_t sample(std::span<const float> logits, const SamplingParams& params);

private:
    std::mt19937_64 rng_;
};

// Index of the largest logit; ties to the lower index.
std::int32_t argmax(std::span<const float> logits);

}  // namespace dsserve::runtime
