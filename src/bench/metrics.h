// The serving figures of spec §6.3, computed from the per-request outputs exactly as SGLang's
// bench_serving computes them: failed requests are left out of every figure, statistics use
// numpy's definitions (linear-interpolation percentiles, population standard deviation), an
// empty series gives 0.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "bench/backend.h"

namespace dsserve::bench {

struct Stats {
    double mean = 0, median = 0, std = 0, p90 = 0, p95 = 0, p99 = 0, max = 0;
};

// Percentile p in [0, 100] with numpy's default linear interpolation; values need not be sorted.
double percentile(std::vector<double> values, double p);
Stats summarize(std::span<const double> values);

struct BenchmarkMetrics {
    std::int64_t completed = 0;
    std::int64_t failed = 0;
    std::int64_t total_input = 0;
    std::int64_t total_output = 0;
    std::int64_t total_output_retokenized = 0;
    double duration_s = 0;
    double request_throughput = 0;
    double input_throughput = 0;
    double output_throughput = 0;
    double total_throughput = 0;
    double max_output_tokens_per_s = 0;  // "Peak output token throughput"
    std::int64_t max_concurrent_requests = 0;
    double concurrency = 0;  // sum of latencies / duration
    Stats e2e_ms, ttft_ms, tpot_ms, itl_ms;
    std::optional<double> accept_length;
};

// outputs[i].output_len is the server-reported length; retokenized_lens[i] the client count of
// outputs[i].generated_text (same size as outputs).
BenchmarkMetrics calculate_metrics(std::span<const RequestOutput> outputs,
                                   std::span<const std::int64_t> retokenized_lens,
                                   double duration_s);

}  // namespace dsserve::bench
