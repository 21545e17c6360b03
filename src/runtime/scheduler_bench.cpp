// The scheduler's own time per decode step, with no model: what the host adds between two device
// steps. Requests are admitted and prefilled through the real Scheduler (KV pool, radix cache,
// chunked prefill), then every timed iteration is one decode step of all of them: plan(),
// assemble() and commit() of one fresh token each. Usage:
//   build/dsserve-microbench --benchmark_filter=Scheduler
// Arguments: running requests, prompt tokens each, page size. Counters: microseconds per step in
// plan (with assembly) and commit.
#include <benchmark/benchmark.h>

#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "runtime/scheduler.h"

namespace dsserve::runtime {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kSteps = 256;  // timed decode steps; every request outlives them

// One token per sampled entry, never an end-of-sequence token.
std::vector<std::int32_t> fake_tokens(const StepPlan& plan, std::mt19937& rng) {
    std::uniform_int_distribution<std::int32_t> token(2, 120000);
    std::vector<std::int32_t> out;
    for (const auto& e : plan.entries) {
        if (e.sample) {
            out.push_back(token(rng));
        }
    }
    return out;
}

void BM_SchedulerDecodeStep(benchmark::State& state) {
    const auto running = static_cast<int>(state.range(0));
    const auto prompt_len = static_cast<int>(state.range(1));
    const auto page_size = static_cast<std::int32_t>(state.range(2));
    SchedulerConfig config;
    config.page_size = page_size;
    const std::int64_t per_request = prompt_len + 2 * kSteps + 2 * page_size;
    config.num_pages = static_cast<std::int32_t>(running * per_request / page_size + running);
    config.max_running_requests = running;
    config.chunked_prefill_size = 8192;
    config.context_length = 1 << 20;
    Scheduler scheduler(config);

    // Prompts share a 256-token system prefix that an earlier request left in the radix cache,
    // so admission matches it as a server's would.
    std::mt19937 rng(1);
    std::uniform_int_distribution<std::int32_t> token(2, 120000);
    std::vector<std::int32_t> prefix(256);
    for (auto& t : prefix) {
        t = token(rng);
    }
    std::int64_t outputs = 0;
    auto add = [&](const std::string& rid, int len, int max_new_tokens) {
        auto req = std::make_unique<Request>();
        req->spec.rid = rid;
        req->spec.input_ids = prefix;
        while (static_cast<int>(req->spec.input_ids.size()) < len) {
            req->spec.input_ids.push_back(token(rng));
        }
        req->spec.input_ids.resize(static_cast<std::size_t>(len));
        req->spec.stop.max_new_tokens = max_new_tokens;
        req->spec.stop.ignore_eos = true;
        req->spec.on_output = [&outputs](const RequestOutput&) { ++outputs; };
        scheduler.add(std::move(req));
    };
    // Untimed: the warm-up request, then prefill until every request decodes.
    auto run_until = [&](auto done) {
        for (;;) {
            StepPlan plan = scheduler.plan();
            benchmark::DoNotOptimize(scheduler.assemble(plan));
            scheduler.commit(plan, fake_tokens(plan, rng), {});
            if (done(plan)) {
                return;
            }
        }
    };
    add("warm", static_cast<int>(prefix.size()) + 1, 1);
    run_until([&](const StepPlan&) { return scheduler.idle(); });
    for (int r = 0; r < running; ++r) {
        add("r" + std::to_string(r), prompt_len, 1 << 20);
    }
    run_until([](const StepPlan& plan) { return plan.num_prefill_tokens == 0; });
    if (scheduler.num_running() != running) {
        state.SkipWithError("not every request is running");
        return;
    }

    double plan_s = 0.0, commit_s = 0.0;
    std::int64_t steps = 0;
    for (auto _ : state) {
        if (steps == kSteps) {
            state.SkipWithError("more iterations than the pool was sized for");
            break;
        }
        const auto t0 = Clock::now();
        StepPlan plan = scheduler.plan();
        auto batch = scheduler.assemble(plan);
        benchmark::DoNotOptimize(batch.seqs.data());
        const auto t1 = Clock::now();
        state.PauseTiming();
        auto sampled = fake_tokens(plan, rng);
        state.ResumeTiming();
        const auto t2 = Clock::now();
        scheduler.commit(plan, sampled, {});
        const auto t3 = Clock::now();
        plan_s += std::chrono::duration<double>(t1 - t0).count();
        commit_s += std::chrono::duration<double>(t3 - t2).count();
        ++steps;
    }
    state.counters["plan_us"] = steps ? plan_s * 1e6 / static_cast<double>(steps) : 0.0;
    state.counters["commit_us"] = steps ? commit_s * 1e6 / static_cast<double>(steps) : 0.0;
    state.counters["running"] = scheduler.num_running();
    state.counters["cached"] = static_cast<double>(scheduler.cached_tokens_in_tree());
    if (scheduler.num_retractions() > 0) {
        state.SkipWithError("a request was retracted: the pool is too small");
    }
}

BENCHMARK(BM_SchedulerDecodeStep)
    ->ArgNames({"running", "prompt", "page"})
    ->Args({256, 1024, 1})
    ->Args({256, 1024, 64})
    ->Args({256, 4096, 64})
    ->Args({64, 1024, 1})
    ->Iterations(kSteps)
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace dsserve::runtime
