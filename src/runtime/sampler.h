// Turning a row of logits into a token: greedy at temperature 0, otherwise temperature, top-k,
// top-p and min-p filtering and a draw from a per-request generator, so the same seed gives the
// same tokens. A draw costs one pass of exp over the vocabulary and sorts only the few tokens
// around the top-p boundary and the drawn one, never the whole vocabulary.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

namespace dsserve::runtime {

struct TokenLogprobs {
    float logprob = 0.0f;
    std::vector<std::pair<std::int32_t, float>> top;
};

struct SamplingParams {
    float temperature = 1.0f;
    float top_p = 1.0f;
    int top_k = -1;  // -1: all
    float min_p = 0.0f;
    float frequency_penalty = 0.0f;   // minus penalty x count, over generated tokens
    float presence_penalty = 0.0f;    // minus penalty if generated at all
    float repetition_penalty = 1.0f;  // divides positive / multiplies negative logits of any token
                                      // seen in the prompt or the output (CTRL, arXiv 1909.05858)
    std::vector<std::pair<std::int32_t, float>> logit_bias;

    bool needs_processing() const {
        return frequency_penalty != 0.0f || presence_penalty != 0.0f ||
               repetition_penalty != 1.0f || !logit_bias.empty();
    }
};

// Applies penalties and logit bias in place. output_counts[t] counts t among generated tokens.
void apply_penalties(std::span<float> logits, const SamplingParams& params,
                     std::span<const std::int32_t> prompt, std::span<const std::int32_t> output);

// log_softmax of a logits row at one token, and the k most likely tokens with theirs.
TokenLogprobs logprobs_of(std::span<const float> logits, std::int32_t token, int top_k);

// Sampling at temperature T draws from softmax(logits / T) restricted, in this order, to the
// top_k most likely tokens, to the smallest most-likely-first prefix of those whose renormalized
// probability reaches top_p, and to the tokens of that prefix with at least min_p times the best
// token's probability. Of equal logits the lower token id counts as the more likely, which decides
// which of them a cut keeps. Penalties are applied to the logits beforehand.
class Sampler {
public:
    explicit Sampler(std::uint64_t seed) : rng_(seed) {}
    // One uniform draw per call (none when greedy), so a seed fixes the whole sequence.
    // Equals pick(logits, params, next_canonical()) when not greedy.
    std::int32_t sample(std::span<const float> logits, const SamplingParams& params);
    // The next uniform in [0, 1) of this sampler's sequence, the draw sample() would take: a
    // caller that picks elsewhere (on a device) spends it, so one seed gives the same tokens on
    // either path.
    double next_canonical();

private:
    std::mt19937_64 rng_;
};

// The token sample() returns for a draw of `canonical` in [0, 1): the walk along the kept tokens
// in draw order stops at the first whose running weight reaches canonical times the kept mass.
// Greedy params ignore canonical.
std::int32_t pick(std::span<const float> logits, const SamplingParams& params, double canonical);

// Whether sample() takes no draw for these params (temperature 0, or top_k 1): the argmax.
bool is_greedy(const SamplingParams& params);

// The tokens sample() can return for these logits and params, in ascending id order: the kept
// set above, less any token of zero probability (a logit of -inf).
std::vector<std::int32_t> sampling_support(std::span<const float> logits,
                                           const SamplingParams& params);

// Index of the largest logit; ties to the lower index.
std::int32_t argmax(std::span<const float> logits);

}  // namespace dsserve::runtime
