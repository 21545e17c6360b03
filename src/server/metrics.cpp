#include "server/metrics.h"

#include <cstdio>

namespace dsserve::server {
namespace {

std::string num(double v) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.17g", v);
    return buf;
}

void metric(std::string& out, const char* name, const char* type, const char* help,
            const std::string& labels, double value) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    out += std::string(name) + "{" + labels + "} " + num(value) + "\n";
}

}  // namespace

Histogram::Histogram(std::vector<double> buckets)
    : buckets_(std::move(buckets)), counts_(buckets_.size() + 1, 0) {}

void Histogram::observe(double value, std::uint64_t count, double sum) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::size_t i = 0;
    while (i < buckets_.size() && value > buckets_[i]) {
        ++i;
    }
    counts_[i] += count;
    total_ += count;
    sum_ += sum >= 0.0 ? sum : value * static_cast<double>(count);
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
    std::lock_guard<std::mutex> lock(mutex_);
    out += "# TYPE " + name + " histogram\n";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
        cumulative += counts_[i];
        out += name + "_bucket{" + labels + ",le=\"" + num(buckets_[i]) + "\"} " +
               std::to_string(cumulative) + "\n";
    }
    out += name + "_bucket{" + labels + ",le=\"+Inf\"} " + std::to_string(total_) + "\n";
    out += name + "_sum{" + labels + "} " + num(sum_) + "\n";
    out += name + "_count{" + labels + "} " + std::to_string(total_) + "\n";
}

Metrics::Metrics(std::string model_name)
    : ttft({0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400}),
      itl({0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020, 0.025, 0.030, 0.035, 0.040, 0.060,
           0.080, 0.100, 0.200, 0.400, 0.600, 0.800, 1,     2,     4,     6,     8}),
      e2e({0.1, 0.2, 0.4, 0.6, 0.8, 1,   2,   4,   6,    8,    10,
           20,  40,  60,  80,  100, 200, 400, 600, 1200, 1800, 2400}) {
    std::string escaped;
    for (char c : model_name) {
        if (c == '"' || c == '\\') {
            escaped.push_back('\\');
        }
        escaped.push_back(c == '\n' ? ' ' : c);
    }
    labels_ = "model_name=\"" + escaped + "\"";
}

std::string Metrics::render(const runtime::EngineStats& s, double startup_seconds) const {
    std::string out;
    metric(out, "sglang:prompt_tokens_total", "counter", "Prompt tokens of finished requests.",
           labels_, static_cast<double>(prompt_tokens.load()));
    metric(out, "sglang:generation_tokens_total", "counter",
           "Generated tokens of finished requests.", labels_,
           static_cast<double>(generation_tokens.load()));
    metric(out, "sglang:cached_tokens_total", "counter",
           "Prompt tokens served from the prefix cache.", labels_,
           static_cast<double>(cached_tokens.load()));
    metric(out, "sglang:num_requests_total", "counter", "Finished requests.", labels_,
           static_cast<double>(requests.load()));
    metric(out, "sglang:num_aborted_requests_total", "counter", "Aborted requests.", labels_,
           static_cast<double>(aborted_requests.load()));
    ttft.render(out, "sglang:time_to_first_token_seconds", labels_);
    itl.render(out, "sglang:inter_token_latency_seconds", labels_);
    e2e.render(out, "sglang:e2e_request_latency_seconds", labels_);
    metric(out, "sglang:num_running_reqs", "gauge", "Running requests.", labels_, s.num_running);
    metric(out, "sglang:num_queue_reqs", "gauge", "Waiting requests.", labels_, s.num_waiting);
    metric(out, "sglang:num_used_tokens", "gauge", "KV slots in use.", labels_,
           static_cast<double>(s.used_tokens));
    metric(out, "sglang:token_usage", "gauge", "Fraction of the KV pool in use.", labels_,
           s.capacity_tokens
               ? static_cast<double>(s.used_tokens) / static_cast<double>(s.capacity_tokens)
               : 0.0);
    metric(out, "sglang:gen_throughput", "gauge",
           "Decode tokens per second over the last decode-log window.", labels_,
           s.last_gen_throughput);
    const double input =
        static_cast<double>(s.prefill_tokens) + static_cast<double>(cached_tokens.load());
    metric(out, "sglang:cache_hit_rate", "gauge", "Prefix-cache hit rate of prompt tokens.",
           labels_, input > 0 ? static_cast<double>(cached_tokens.load()) / input : 0.0);
    metric(out, "sglang:spec_accept_length", "gauge", "Mean accepted tokens per verify step.",
           labels_, 0.0);
    metric(out, "sglang:num_retracted_reqs", "gauge", "Requests retracted under KV pressure.",
           labels_, static_cast<double>(s.retractions));
    metric(out, "sglang:max_total_num_tokens", "gauge", "KV pool capacity in tokens.", labels_,
           static_cast<double>(s.capacity_tokens));
    metric(out, "sglang:engine_startup_time", "gauge", "Seconds from start to ready.", labels_,
           startup_seconds);
    return out;
}

}  // namespace dsserve::server
