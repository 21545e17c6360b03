// dsserve-microbench: the cost of one decode step and of a prefill, for the tiny and small
// presets with dummy weights (no files), on the CPU backend or the one DSSERVE_BENCH_DEVICE names.
// Usage:
//   build/dsserve-microbench --benchmark_filter=Decode
//   DSSERVE_BENCH_DEVICE=cuda build/dsserve-microbench
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>

#include "core/file.h"
#include "model/make_model.h"
#include "runtime/model_runner.h"

namespace dsserve::runtime {
namespace {

LoadedModel& model_for(const std::string& preset) {
    static std::map<std::string, std::unique_ptr<LoadedModel>> models;
    auto& slot = models[preset];
    if (!slot) {
        auto dir = std::filesystem::temp_directory_path() / ("dsserve_bench_" + preset);
        std::filesystem::create_directories(dir);
        write_file(dir / "config.json", model::preset_config(preset, 0).dump());
        ModelOptions o;
        o.model_path = dir;
        o.load_format = "dummy";
        const char* device = std::getenv("DSSERVE_BENCH_DEVICE");
        o.backend.device = device != nullptr ? device : "cpu";
        slot = std::make_unique<LoadedModel>(o);
    }
    return *slot;
}

// One decode step (batch 1) at a context of state.range(0) tokens.
void BM_DecodeStep(benchmark::State& state, const std::string& preset) {
    auto& loaded = model_for(preset);
    const auto context = static_cast<std::int32_t>(state.range(0));
    Sequence seq(loaded.model(), context + 1 + 100000);
    std::vector<std::int32_t> prompt(static_cast<std::size_t>(context));
    for (std::size_t i = 0; i < prompt.size(); ++i) {
        prompt[i] = static_cast<std::int32_t>(1000 + i);
    }
    seq.feed(prompt, false);
    std::int32_t token = 42;
    for (auto _ : state) {
        auto r = seq.feed(std::span<const std::int32_t>(&token, 1), false);
        benchmark::DoNotOptimize(r.logits.data.data());
        state.PauseTiming();
        if (seq.length() >= context + 100000) {
            state.SkipWithError("cache full");
        }
        state.ResumeTiming();
    }
    state.counters["tokens/s"] =
        benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_Prefill(benchmark::State& state, const std::string& preset) {
    auto& loaded = model_for(preset);
    const auto n = static_cast<std::int32_t>(state.range(0));
    std::vector<std::int32_t> prompt(static_cast<std::size_t>(n));
    for (std::size_t i = 0; i < prompt.size(); ++i) {
        prompt[i] = static_cast<std::int32_t>(1000 + i);
    }
    for (auto _ : state) {
        Sequence seq(loaded.model(), n);
        auto r = seq.feed(prompt, false);
        benchmark::DoNotOptimize(r.logits.data.data());
    }
    state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(state.iterations() * n),
                                                    benchmark::Counter::kIsRate);
}

BENCHMARK_CAPTURE(BM_DecodeStep, tiny, std::string("tiny"))
    ->Arg(16)
    ->Arg(512)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_DecodeStep, small, std::string("small"))
    ->Arg(16)
    ->Arg(512)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Prefill, tiny, std::string("tiny"))->Arg(256)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Prefill, small, std::string("small"))->Arg(256)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace dsserve::runtime

BENCHMARK_MAIN();
