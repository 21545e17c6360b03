// `dsserve bench --sweep-concurrency 1,2,4,...`: one run per concurrency level, a CSV of the
// figures, and a PNG of output throughput and TTFT/TPOT against concurrency (drawn by python3
// with matplotlib, Debian's python3-matplotlib).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "bench/metrics.h"

namespace dsserve::bench {

struct SweepPoint {
    std::int64_t concurrency = 0;
    BenchmarkMetrics metrics;
};

// "1,2,4,8" -> {1, 2, 4, 8}; throws Error on anything but positive integers.
std::vector<std::int64_t> parse_concurrency_list(std::string_view text);

std::string sweep_csv(const std::vector<SweepPoint>& points);

// Runs python3 on the embedded plotting script. Returns an empty string on success, else why it
// could not draw (no python3, no matplotlib): the CSV is still there.
std::string plot_sweep(const std::filesystem::path& csv, const std::filesystem::path& png,
                       const std::string& title);

}  // namespace dsserve::bench
