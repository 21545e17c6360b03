#include "bench/report.h"

#include <gtest/gtest.h>

#include <limits>

#include "core/file.h"

namespace dsserve::bench {
namespace {

TEST(PythonFloat, LikePythonStr) {
    EXPECT_EQ(python_float(std::numeric_limits<double>::infinity()), "inf");
    EXPECT_EQ(python_float(64.0), "64.0");
    EXPECT_EQ(python_float(2.5), "2.5");
    EXPECT_EQ(python_float(0.1), "0.1");
}

// The cookbook's table, as Python's format strings print it (tools/gen_bench_goldens.py).
TEST(FormatTable, MatchesBenchServingLayout) {
    const Json in = Json::parse(read_file(DSSERVE_GOLDEN_DIR "/bench/table_input.json"));
    RunInfo info;
    info.backend = in["backend"];
    info.request_rate = std::numeric_limits<double>::infinity();
    info.max_concurrency = in["max_concurrency"].get<std::int64_t>();
    BenchmarkMetrics m;
    m.completed = in["completed"];
    m.duration_s = in["duration"];
    m.total_input = in["total_input"];
    m.total_output = in["total_output"];
    m.total_output_retokenized = in["total_output_retokenized"];
    m.request_throughput = in["request_throughput"];
    m.input_throughput = in["input_throughput"];
    m.output_throughput = in["output_throughput"];
    m.max_output_tokens_per_s = in["max_output_tokens_per_s"];
    m.max_concurrent_requests = in["max_concurrent_requests"];
    m.total_throughput = in["total_throughput"];
    m.concurrency = in["concurrency"];
    m.accept_length = in["accept_length"].get<double>();
    m.e2e_ms.mean = in["e2e"][0];
    m.e2e_ms.median = in["e2e"][1];
    m.e2e_ms.p90 = in["e2e"][2];
    m.e2e_ms.p99 = in["e2e"][3];
    m.ttft_ms.mean = in["ttft"][0];
    m.ttft_ms.median = in["ttft"][1];
    m.ttft_ms.p99 = in["ttft"][2];
    m.tpot_ms.mean = in["tpot"][0];
    m.tpot_ms.median = in["tpot"][1];
    m.tpot_ms.p99 = in["tpot"][2];
    m.itl_ms.mean = in["itl"][0];
    m.itl_ms.median = in["itl"][1];
    m.itl_ms.p95 = in["itl"][2];
    m.itl_ms.p99 = in["itl"][3];
    m.itl_ms.max = in["itl"][4];
    EXPECT_EQ(format_table(info, m), read_file(DSSERVE_GOLDEN_DIR "/bench/table.txt"));

    // No accept length: no row; no concurrency cap: "not set".
    m.accept_length.reset();
    info.max_concurrency.reset();
    const std::string t = format_table(info, m);
    EXPECT_EQ(t.find("Accept length"), std::string::npos);
    EXPECT_NE(t.find("Max request concurrency:                 not set   \n"), std::string::npos);
}

TEST(MetricsJson, SglangKeys) {
    RunInfo info;
    info.backend = "sglang";
    info.request_rate = std::numeric_limits<double>::infinity();
    BenchmarkMetrics m;
    m.completed = 3;
    m.failed = 1;
    const Json j = metrics_json(info, m, {"request 2: HTTP 500"});
    for (const char* key : {"request_throughput", "mean_ttft_ms", "p99_itl_ms", "accept_length",
                            "max_concurrent_requests", "max_output_tokens_per_s",
                            "total_output_tokens_retokenized", "median_e2e_latency_ms"}) {
        EXPECT_TRUE(j.contains(key)) << key;
    }
    EXPECT_EQ(j["failed"], 1);
    EXPECT_EQ(j["request_rate"], "inf");
    EXPECT_EQ(j["errors"][0], "request 2: HTTP 500");
}

}  // namespace
}  // namespace dsserve::bench
