// Time to draw one token from a DeepSeek-V3.2-sized row of logits (129,280 entries), per filter
// combination and logit shape. Usage:
//   build/dsserve-microbench --benchmark_filter=Sample
//
// Shapes: "flat" is N(0, 1) noise, what the random-weight tiny model produces, where top-p keeps
// most of the vocabulary; "peaked" is N(0, 2) noise under twenty tokens raised to 12..18, so that
// a few dozen tokens carry nearly all the mass, as with a trained model.
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "runtime/sampler.h"

namespace dsserve::runtime {
namespace {

constexpr std::size_t kVocab = 129280;

std::vector<float> logits_of(const std::string& shape) {
    std::mt19937_64 rng(7);
    std::vector<float> logits(kVocab);
    if (shape == "flat") {
        std::normal_distribution<float> noise(0.0f, 1.0f);
        for (auto& l : logits) {
            l = noise(rng);
        }
        return logits;
    }
    std::normal_distribution<float> noise(0.0f, 2.0f);
    for (auto& l : logits) {
        l = noise(rng);
    }
    std::uniform_int_distribution<std::size_t> token(0, kVocab - 1);
    std::uniform_real_distribution<float> high(12.0f, 18.0f);
    for (int i = 0; i < 20; ++i) {
        logits[token(rng)] = high(rng);
    }
    return logits;
}

void BM_Sample(benchmark::State& state, const std::string& shape, SamplingParams params) {
    const auto logits = logits_of(shape);
    Sampler sampler(1);
    for (auto _ : state) {
        benchmark::DoNotOptimize(sampler.sample(logits, params));
    }
    state.counters["tokens/s"] =
        benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

SamplingParams params(float top_p, int top_k, float min_p) {
    SamplingParams p;
    p.temperature = 1.0f;
    p.top_p = top_p;
    p.top_k = top_k;
    p.min_p = min_p;
    return p;
}

BENCHMARK_CAPTURE(BM_Sample, flat_top_p_0_95, std::string("flat"), params(0.95f, -1, 0.0f))
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Sample, peaked_top_p_0_95, std::string("peaked"), params(0.95f, -1, 0.0f))
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Sample, peaked_no_filter, std::string("peaked"), params(1.0f, -1, 0.0f))
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Sample, peaked_min_p_0_05, std::string("peaked"), params(1.0f, -1, 0.05f))
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Sample, peaked_top_k_20_top_p_0_95, std::string("peaked"),
                  params(0.95f, 20, 0.0f))
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Sample, peaked_greedy, std::string("peaked"), params(1.0f, 1, 0.0f))
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace dsserve::runtime
