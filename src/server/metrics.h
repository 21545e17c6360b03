// Prometheus text exposition with SGLang's metric names (spec serving-api.md §5), so SGLang's
// dashboards scrape dsserve unchanged. Request-level series are recorded at the HTTP edge,
// engine-level gauges are read from the engine's stats at scrape time.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/engine.h"

namespace dsserve::server {

class Histogram {
public:
    explicit Histogram(std::vector<double> buckets);
    // Adds `count` observations of `value` (ITL adds one per token of a batch).
    void observe(double value, std::uint64_t count = 1, double sum = -1.0);
    void render(std::string& out, const std::string& name, const std::string& labels) const;

private:
    std::vector<double> buckets_;
    mutable std::mutex mutex_;
    std::vector<std::uint64_t> counts_;
    std::uint64_t total_ = 0;
    double sum_ = 0.0;
};

class Metrics {
public:
    explicit Metrics(std::string model_name);

    std::atomic<std::uint64_t> prompt_tokens{0}, generation_tokens{0}, cached_tokens{0};
    std::atomic<std::uint64_t> requests{0}, aborted_requests{0};
    Histogram ttft, itl, e2e;

    std::string render(const runtime::EngineStats& stats, double startup_seconds) const;

private:
    std::string labels_;
};

}  // namespace dsserve::server
