#include "bench/metrics.h"

#include <gtest/gtest.h>

namespace dsserve::bench {
namespace {

TEST(Percentile, LinearInterpolationLikeNumpy) {
    // np.percentile([1, 2, 3, 4], [0, 50, 90, 99, 100]) = 1, 2.5, 3.7, 3.97, 4
    const std::vector<double> v = {4, 1, 3, 2};
    EXPECT_DOUBLE_EQ(percentile(v, 0), 1.0);
    EXPECT_DOUBLE_EQ(percentile(v, 50), 2.5);
    EXPECT_NEAR(percentile(v, 90), 3.7, 1e-12);
    EXPECT_NEAR(percentile(v, 99), 3.97, 1e-12);
    EXPECT_DOUBLE_EQ(percentile(v, 100), 4.0);
    EXPECT_EQ(percentile({}, 50), 0.0);
    const Stats s = summarize(v);
    EXPECT_DOUBLE_EQ(s.mean, 2.5);
    EXPECT_NEAR(s.std, std::sqrt(1.25), 1e-12);  // population std, numpy's default
    EXPECT_EQ(s.max, 4.0);
}

RequestOutput ok(double start, double ttft, std::vector<double> itl, std::int64_t out_len,
                 std::int64_t prompt_len = 10) {
    RequestOutput o;
    o.success = true;
    o.start_s = start;
    o.ttft_s = ttft;
    o.itl_s = std::move(itl);
    o.output_len = out_len;
    o.prompt_len = prompt_len;
    double latency = ttft;
    for (double g : o.itl_s) {
        latency += g;
    }
    o.latency_s = latency;
    return o;
}

TEST(CalculateMetrics, FailedRequestsAreLeftOut) {
    RequestOutput bad;
    bad.success = false;
    bad.error = "HTTP 500";
    bad.prompt_len = 1000;
    bad.output_len = 1000;
    std::vector<RequestOutput> outputs = {ok(0.0, 0.5, {0.25, 0.25}, 3), bad,
                                          ok(0.2, 0.1, {0.4}, 2, 20)};
    const std::vector<std::int64_t> retok = {4, 99, 1};
    const BenchmarkMetrics m = calculate_metrics(outputs, retok, 2.0);
    EXPECT_EQ(m.completed, 2);
    EXPECT_EQ(m.failed, 1);
    EXPECT_EQ(m.total_input, 30);
    EXPECT_EQ(m.total_output, 5);
    EXPECT_EQ(m.total_output_retokenized, 5);
    EXPECT_DOUBLE_EQ(m.request_throughput, 1.0);
    EXPECT_DOUBLE_EQ(m.output_throughput, 2.5);
    EXPECT_DOUBLE_EQ(m.total_throughput, 17.5);
    EXPECT_DOUBLE_EQ(m.concurrency, (1.0 + 0.5) / 2.0);
    // TPOT: (1.0 - 0.5) / 2 and (0.5 - 0.1) / 1
    EXPECT_NEAR(m.tpot_ms.mean, (250.0 + 400.0) / 2, 1e-9);
    EXPECT_NEAR(m.ttft_ms.mean, 300.0, 1e-9);
    EXPECT_NEAR(m.itl_ms.max, 400.0, 1e-9);
    EXPECT_NEAR(m.e2e_ms.median, 750.0, 1e-9);
}

TEST(CalculateMetrics, PeakThroughputUsesOneSecondBinsAndPeakConcurrencyInstants) {
    // Token times: request A at 0.5, 0.9, 1.2; request B (start 1.0) at 1.1, 1.3, 1.4, 2.5.
    std::vector<RequestOutput> outputs = {ok(0.0, 0.5, {0.4, 0.3}, 3),
                                          ok(1.0, 0.1, {0.2, 0.1, 1.1}, 4)};
    const BenchmarkMetrics m = calculate_metrics(outputs, std::vector<std::int64_t>{0, 0}, 3.0);
    EXPECT_DOUBLE_EQ(m.max_output_tokens_per_s, 4.0);  // second [1, 2): 1.2, 1.1, 1.3, 1.4
    // A spans [0, 1.2), B [1.0, 2.5): both in flight during [1.0, 1.2).
    EXPECT_EQ(m.max_concurrent_requests, 2);
    // Back to back within one second, [0, 0.3) then [0.3, 0.6), and a third at [0.7, 0.8): never
    // two at once.
    std::vector<RequestOutput> serial = {ok(0.0, 0.3, {}, 1), ok(0.3, 0.3, {}, 1),
                                         ok(0.7, 0.1, {}, 1)};
    EXPECT_EQ(
        calculate_metrics(serial, std::vector<std::int64_t>{0, 0, 0}, 1.0).max_concurrent_requests,
        1);
}

TEST(CalculateMetrics, AllFailedGivesZeros) {
    RequestOutput bad;
    const BenchmarkMetrics m =
        calculate_metrics(std::vector<RequestOutput>{bad}, std::vector<std::int64_t>{0}, 1.0);
    EXPECT_EQ(m.completed, 0);
    EXPECT_EQ(m.failed, 1);
    EXPECT_EQ(m.ttft_ms.mean, 0.0);
    EXPECT_EQ(m.max_concurrent_requests, 0);
}

}  // namespace
}  // namespace dsserve::bench
