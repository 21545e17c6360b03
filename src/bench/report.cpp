#include "bench/report.h"

#include <charconv>
#include <cmath>
#include <ctime>

#include "core/error.h"

namespace dsserve::bench {

namespace {

constexpr int kRuleWidth = 50;

// Python's f"{title:=^50}": the title centred, extra padding on the right.
std::string rule(const std::string& title, char fill) {
    const int pad = kRuleWidth - static_cast<int>(title.size());
    if (pad <= 0) {
        return title;
    }
    const int left = pad / 2;
    return std::string(left, fill) + title + std::string(pad - left, fill);
}

// "{:<40} {:<10}".format(label, value)
std::string row(const std::string& label, const std::string& value) {
    std::string out = label;
    if (out.size() < 40) {
        out.append(40 - out.size(), ' ');
    }
    out += ' ';
    out += value;
    if (value.size() < 10) {
        out.append(10 - value.size(), ' ');
    }
    out += '\n';
    return out;
}

std::string fixed2(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2f", v);
    return buf;
}

}  // namespace

std::string python_float(double v) {
    if (std::isinf(v)) {
        return v > 0 ? "inf" : "-inf";
    }
    if (std::isnan(v)) {
        return "nan";
    }
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    DS_ASSERT(ec == std::errc(), "to_chars failed");
    std::string s(buf, end);
    if (s.find_first_of(".e") == std::string::npos) {
        s += ".0";
    }
    return s;
}

std::string format_table(const RunInfo& info, const BenchmarkMetrics& m) {
    std::string t = "\n" + rule(" Serving Benchmark Result ", '=') + "\n";
    t += row("Backend:", info.backend);
    t += row("Traffic request rate:", python_float(info.request_rate));
    t += row("Max request concurrency:",
             info.max_concurrency ? std::to_string(*info.max_concurrency) : "not set");
    t += row("Successful requests:", std::to_string(m.completed));
    t += row("Benchmark duration (s):", fixed2(m.duration_s));
    t += row("Total input tokens:", std::to_string(m.total_input));
    t += row("Total input text tokens:", std::to_string(m.total_input));
    t += row("Total input vision tokens:", "0");
    t += row("Total generated tokens:", std::to_string(m.total_output));
    t += row("Total generated tokens (retokenized):", std::to_string(m.total_output_retokenized));
    t += row("Request throughput (req/s):", fixed2(m.request_throughput));
    t += row("Input token throughput (tok/s):", fixed2(m.input_throughput));
    t += row("Output token throughput (tok/s):", fixed2(m.output_throughput));
    t += row("Peak output token throughput (tok/s):", fixed2(m.max_output_tokens_per_s));
    t += row("Peak concurrent requests:", std::to_string(m.max_concurrent_requests));
    t += row("Total token throughput (tok/s):", fixed2(m.total_throughput));
    t += row("Concurrency:", fixed2(m.concurrency));
    if (m.accept_length && *m.accept_length > 0) {
        t += row("Accept length:", fixed2(*m.accept_length));
    }
    t += rule("End-to-End Latency", '-') + "\n";
    t += row("Mean E2E Latency (ms):", fixed2(m.e2e_ms.mean));
    t += row("Median E2E Latency (ms):", fixed2(m.e2e_ms.median));
    t += row("P90 E2E Latency (ms):", fixed2(m.e2e_ms.p90));
    t += row("P99 E2E Latency (ms):", fixed2(m.e2e_ms.p99));
    t += rule("Time to First Token", '-') + "\n";
    t += row("Mean TTFT (ms):", fixed2(m.ttft_ms.mean));
    t += row("Median TTFT (ms):", fixed2(m.ttft_ms.median));
    t += row("P99 TTFT (ms):", fixed2(m.ttft_ms.p99));
    t += rule("Time per Output Token (excl. 1st token)", '-') + "\n";
    t += row("Mean TPOT (ms):", fixed2(m.tpot_ms.mean));
    t += row("Median TPOT (ms):", fixed2(m.tpot_ms.median));
    t += row("P99 TPOT (ms):", fixed2(m.tpot_ms.p99));
    t += rule("Inter-Token Latency", '-') + "\n";
    t += row("Mean ITL (ms):", fixed2(m.itl_ms.mean));
    t += row("Median ITL (ms):", fixed2(m.itl_ms.median));
    t += row("P95 ITL (ms):", fixed2(m.itl_ms.p95));
    t += row("P99 ITL (ms):", fixed2(m.itl_ms.p99));
    t += row("Max ITL (ms):", fixed2(m.itl_ms.max));
    t += std::string(kRuleWidth, '=') + "\n";
    return t;
}

Json metrics_json(const RunInfo& info, const BenchmarkMetrics& m,
                  const std::vector<std::string>& errors) {
    Json j = Json::object();
    j["backend"] = info.backend;
    j["dataset_name"] = info.dataset_name;
    // JSON has no infinity; SGLang's json.dumps writes the bare word Infinity, which strict
    // parsers reject, so an unlimited rate is written as the string "inf".
    if (std::isinf(info.request_rate)) {
        j["request_rate"] = "inf";
    } else {
        j["request_rate"] = info.request_rate;
    }
    j["max_concurrency"] = info.max_concurrency ? Json(*info.max_concurrency) : Json(nullptr);
    j["sharegpt_output_len"] =
        info.sharegpt_output_len ? Json(*info.sharegpt_output_len) : Json(nullptr);
    j["random_input_len"] = info.random_input_len;
    j["random_output_len"] = info.random_output_len;
    j["random_range_ratio"] = info.random_range_ratio;
    j["duration"] = m.duration_s;
    j["completed"] = m.completed;
    j["failed"] = m.failed;
    j["total_input_tokens"] = m.total_input;
    j["total_output_tokens"] = m.total_output;
    j["total_output_tokens_retokenized"] = m.total_output_retokenized;
    j["request_throughput"] = m.request_throughput;
    j["input_throughput"] = m.input_throughput;
    j["output_throughput"] = m.output_throughput;
    j["total_throughput"] = m.total_throughput;
    j["max_output_tokens_per_s"] = m.max_output_tokens_per_s;
    j["max_concurrent_requests"] = m.max_concurrent_requests;
    j["concurrency"] = m.concurrency;
    j["accept_length"] = m.accept_length ? Json(*m.accept_length) : Json(nullptr);
    const auto put = [&](const char* name, const Stats& s) {
        j[str_cat("mean_", name, "_ms")] = s.mean;
        j[str_cat("median_", name, "_ms")] = s.median;
        j[str_cat("std_", name, "_ms")] = s.std;
        j[str_cat("p90_", name, "_ms")] = s.p90;
        j[str_cat("p95_", name, "_ms")] = s.p95;
        j[str_cat("p99_", name, "_ms")] = s.p99;
        j[str_cat("max_", name, "_ms")] = s.max;
    };
    put("e2e_latency", m.e2e_ms);
    put("ttft", m.ttft_ms);
    put("tpot", m.tpot_ms);
    put("itl", m.itl_ms);
    j["errors"] = errors;
    return j;
}

std::string default_output_file(const RunInfo& info) {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char mmdd[8];
    std::strftime(mmdd, sizeof mmdd, "%m%d", &tm);
    if (info.dataset_name == "random") {
        return str_cat(info.backend, "_", mmdd, "_", info.num_prompts, "_", info.random_input_len,
                       "_", info.random_output_len, ".jsonl");
    }
    return str_cat(info.backend, "_", mmdd, "_", info.num_prompts, "_", info.dataset_name,
                   ".jsonl");
}

}  // namespace dsserve::bench
