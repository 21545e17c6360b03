// The printed "Serving Benchmark Result" table (spec §6.4, byte for byte) and the JSON line
// appended to --output-file after each run.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "bench/metrics.h"
#include "core/json.h"

namespace dsserve::bench {

// What the table and the JSON line say about the run besides the figures.
struct RunInfo {
    std::string backend;
    std::string dataset_name;
    double request_rate = 0;                      // +inf when unlimited
    std::optional<std::int64_t> max_concurrency;  // nullopt prints "not set"
    std::int64_t num_prompts = 0;
    std::optional<std::int64_t> sharegpt_output_len;
    std::int64_t random_input_len = 0;
    std::int64_t random_output_len = 0;
    double random_range_ratio = 0;
};

// Python's str(float): shortest repr, "64.0", "2.5", "inf".
std::string python_float(double v);

std::string format_table(const RunInfo& info, const BenchmarkMetrics& m);

// One flat JSON object with SGLang's key names (request_throughput, mean_ttft_ms, ...), plus
// "failed" and the first errors.
Json metrics_json(const RunInfo& info, const BenchmarkMetrics& m,
                  const std::vector<std::string>& errors);

// SGLang's default output file name: {backend}_{MMDD}_{num_prompts}_{in}_{out}.jsonl for the
// random dataset, {backend}_{MMDD}_{num_prompts}_{dataset}.jsonl otherwise.
std::string default_output_file(const RunInfo& info);

}  // namespace dsserve::bench
