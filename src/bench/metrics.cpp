#include "bench/metrics.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "core/error.h"

namespace dsserve::bench {

double percentile(std::vector<double> values, double p) {
    if (values.empty()) {
        return 0.0;
    }
    std::sort(values.begin(), values.end());
    const double rank = p / 100.0 * static_cast<double>(values.size() - 1);
    const auto lo = static_cast<std::size_t>(std::floor(rank));
    const std::size_t hi = std::min(lo + 1, values.size() - 1);
    return values[lo] + (values[hi] - values[lo]) * (rank - static_cast<double>(lo));
}

Stats summarize(std::span<const double> values) {
    Stats s;
    if (values.empty()) {
        return s;
    }
    const double n = static_cast<double>(values.size());
    s.mean = std::accumulate(values.begin(), values.end(), 0.0) / n;
    double sq = 0;
    for (double v : values) {
        sq += (v - s.mean) * (v - s.mean);
    }
    s.std = std::sqrt(sq / n);
    std::vector<double> copy(values.begin(), values.end());
    s.median = percentile(copy, 50);
    s.p90 = percentile(copy, 90);
    s.p95 = percentile(copy, 95);
    s.p99 = percentile(copy, 99);
    s.max = *std::max_element(values.begin(), values.end());
    return s;
}

namespace {

std::vector<double> to_ms(std::vector<double> seconds) {
    for (double& v : seconds) {
        v *= 1000.0;
    }
    return seconds;
}

// Largest number of token timestamps falling in one 1-second bin counted from the earliest
// request start. A request's token times are start + ttft, then each ITL added in turn.
double peak_output_tokens_per_s(std::span<const RequestOutput> outputs, double t0) {
    std::map<std::int64_t, std::int64_t> bins;
    for (const RequestOutput& o : outputs) {
        if (!o.success) {
            continue;
        }
        double t = o.start_s + o.ttft_s;
        ++bins[static_cast<std::int64_t>(std::floor(t - t0))];
        for (double gap : o.itl_s) {
            t += gap;
            ++bins[static_cast<std::int64_t>(std::floor(t - t0))];
        }
    }
    std::int64_t peak = 0;
    for (const auto& [bin, count] : bins) {
        peak = std::max(peak, count);
    }
    return static_cast<double>(peak);
}

// The most requests in flight at one instant: a sweep over the half-open spans [start, end),
// an end before a start at the same time, as vLLM's bench serve now counts. (Counting the requests
// that touch the same one-second bin, as it did before, reports several times --max-concurrency
// for short requests.)
std::int64_t peak_concurrent_requests(std::span<const RequestOutput> outputs) {
    std::vector<std::pair<double, int>> events;
    for (const RequestOutput& o : outputs) {
        if (o.success) {
            events.emplace_back(o.start_s, 1);
            events.emplace_back(o.start_s + o.latency_s, -1);
        }
    }
    std::sort(events.begin(), events.end());  // -1 sorts before +1 at equal times
    std::int64_t running = 0, peak = 0;
    for (const auto& [time, change] : events) {
        running += change;
        peak = std::max(peak, running);
    }
    return peak;
}

}  // namespace

BenchmarkMetrics calculate_metrics(std::span<const RequestOutput> outputs,
                                   std::span<const std::int64_t> retokenized_lens,
                                   double duration_s) {
    DS_ASSERT(outputs.size() == retokenized_lens.size(), outputs.size(), " vs ",
              retokenized_lens.size());
    BenchmarkMetrics m;
    m.duration_s = duration_s;
    std::vector<double> e2e, ttft, tpot, itl;
    double latency_sum = 0;
    double t0 = 0;
    bool any = false;
    for (std::size_t i = 0; i < outputs.size(); ++i) {
        const RequestOutput& o = outputs[i];
        if (!o.success) {
            ++m.failed;
            continue;
        }
        t0 = any ? std::min(t0, o.start_s) : o.start_s;
        any = true;
        ++m.completed;
        m.total_input += o.prompt_len;
        m.total_output += o.output_len;
        m.total_output_retokenized += retokenized_lens[i];
        if (o.output_len > 1) {
            tpot.push_back((o.latency_s - o.ttft_s) / static_cast<double>(o.output_len - 1));
        }
        itl.insert(itl.end(), o.itl_s.begin(), o.itl_s.end());
        ttft.push_back(o.ttft_s);
        e2e.push_back(o.latency_s);
        latency_sum += o.latency_s;
    }
    if (duration_s > 0) {
        m.request_throughput = static_cast<double>(m.completed) / duration_s;
        m.input_throughput = static_cast<double>(m.total_input) / duration_s;
        m.output_throughput = static_cast<double>(m.total_output) / duration_s;
        m.total_throughput = static_cast<double>(m.total_input + m.total_output) / duration_s;
        m.concurrency = latency_sum / duration_s;
    }
    if (any) {
        m.max_output_tokens_per_s = peak_output_tokens_per_s(outputs, t0);
        m.max_concurrent_requests = peak_concurrent_requests(outputs);
    }
    m.e2e_ms = summarize(to_ms(std::move(e2e)));
    m.ttft_ms = summarize(to_ms(std::move(ttft)));
    m.tpot_ms = summarize(to_ms(std::move(tpot)));
    m.itl_ms = summarize(to_ms(std::move(itl)));
    return m;
}

}  // namespace dsserve::bench
