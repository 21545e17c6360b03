#include "bench/benchmark.h"

#include <gtest/gtest.h>

#include <chrono>
#include <limits>

#include "core/error.h"
#include "fake_server.h"
#include "test_codec.h"

namespace dsserve::bench {
namespace {

using testing::ByteCodec;
using testing::FakeServer;

constexpr double kInf = std::numeric_limits<double>::infinity();

BenchmarkConfig config_for(const FakeServer& server, const std::string& backend) {
    BenchmarkConfig c;
    c.url = server.url();
    c.backend_name = backend;
    c.request.model = "fake-model";
    c.request_rate = kInf;
    c.warmup_requests = 0;
    c.show_progress = false;
    return c;
}

std::vector<DatasetRow> rows_of(const std::vector<std::string>& prompts, std::int64_t out_len) {
    std::vector<DatasetRow> rows;
    for (const auto& p : prompts) {
        rows.push_back({p, static_cast<std::int64_t>(p.size()), out_len});
    }
    return rows;
}

Json stats(const FakeServer& server) {
    return Json::parse(http_fetch(server.url(), {"GET", "/stats", "", {}}).body);
}

TEST(Benchmark, BrokenRequestsAreCountedPerRequestAndNeverStopTheRun) {
    FakeServer server;
    for (const std::string backend : {"sglang", "sglang-oai", "sglang-oai-chat"}) {
        const auto rows = rows_of(
            {"good one", "FAIL500", "MALFORMED", "DROP", "STREAMERR", "NODONE", "good two MULTI"},
            6);
        NumpyRandom rng(1);
        double duration = 0;
        const auto out = send_requests(config_for(server, backend), rows, rng, false, &duration);
        ASSERT_EQ(out.size(), rows.size());
        EXPECT_TRUE(out[0].success) << backend << ": " << out[0].error;
        EXPECT_TRUE(out[6].success) << backend << ": " << out[6].error;
        for (std::size_t i = 1; i <= 5; ++i) {
            EXPECT_FALSE(out[i].success) << backend << " row " << i;
            EXPECT_FALSE(out[i].error.empty());
        }
        EXPECT_NE(out[1].error.find("HTTP 500"), std::string::npos) << out[1].error;
        EXPECT_NE(out[2].error.find("malformed"), std::string::npos) << out[2].error;
        EXPECT_NE(out[4].error.find("engine exploded"), std::string::npos) << out[4].error;
        EXPECT_NE(out[5].error.find("[DONE]"), std::string::npos) << out[5].error;
        EXPECT_EQ(out[0].generated_text, "tok0 tok1 tok2 tok3 tok4 tok5 ");
        if (backend == "sglang") {
            EXPECT_EQ(out[0].output_len, 6);
            EXPECT_EQ(out[0].itl_s.size(), 5u);  // one entry per token
            // Events of two tokens: the first event is the TTFT, each later one two ITL entries.
            EXPECT_EQ(out[6].itl_s.size(), 4u);
        }
        const BenchmarkMetrics m =
            calculate_metrics(out, std::vector<std::int64_t>(7, 1), duration);
        EXPECT_EQ(m.completed, 2);
        EXPECT_EQ(m.failed, 5);
        EXPECT_EQ(m.total_output, 12);
        EXPECT_EQ(m.total_input, 8 + 14);
    }
}

// A server that stops sending (here: after the stream's header, or before any answer) must cost
// one failed request after the timeout, never the run: the rest completes and is reported.
TEST(Benchmark, StalledResponsesTimeOutAsFailedRequests) {
    FakeServer server;
    for (const bool stream : {true, false}) {
        BenchmarkConfig c = config_for(server, "sglang");
        c.request.stream = stream;
        c.request_timeout = std::chrono::seconds(1);
        c.max_concurrency = 2;
        NumpyRandom rng(1);
        double duration = 0;
        const auto rows = rows_of({"a", "STALL", "b", "STALL", "c", "d"}, 3);
        const auto out = send_requests(c, rows, rng, false, &duration);
        ASSERT_EQ(out.size(), rows.size());
        for (std::size_t i = 0; i < rows.size(); ++i) {
            const bool stalled = rows[i].prompt == "STALL";
            EXPECT_EQ(out[i].success, !stalled) << i << ": " << out[i].error;
            if (stalled) {
                EXPECT_NE(out[i].error.find("timed out"), std::string::npos) << out[i].error;
            }
        }
        EXPECT_GE(duration, 1.0);
        EXPECT_LT(duration, 10.0);
        const BenchmarkMetrics m =
            calculate_metrics(out, std::vector<std::int64_t>(6, 1), duration);
        EXPECT_EQ(m.completed, 4);
        EXPECT_EQ(m.failed, 2);
    }
}

TEST(Benchmark, ConnectionRefusedIsAFailedRequest) {
    BenchmarkConfig c;
    c.url = Url::parse("http://127.0.0.1:1");  // nothing listens on port 1
    c.request_rate = kInf;
    c.show_progress = false;
    NumpyRandom rng(1);
    double duration = 0;
    const auto out = send_requests(c, rows_of({"a", "b"}, 4), rng, false, &duration);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_FALSE(out[0].success);
    EXPECT_NE(out[0].error.find("connect"), std::string::npos) << out[0].error;
    c.warmup_requests = 1;
    ByteCodec codec;
    EXPECT_THROW(run_benchmark(c, rows_of({"a"}, 4), codec, rng), Error);
}

TEST(Benchmark, MaxConcurrencyCapsRequestsInFlight) {
    FakeServer server({"--token-delay", "0.005"});
    BenchmarkConfig c = config_for(server, "sglang");
    c.max_concurrency = 3;
    std::vector<std::string> prompts(12, "p");
    NumpyRandom rng(1);
    double duration = 0;
    const auto out = send_requests(c, rows_of(prompts, 4), rng, false, &duration);
    for (const auto& o : out) {
        EXPECT_TRUE(o.success) << o.error;
    }
    const Json s = stats(server);
    EXPECT_EQ(s["requests"], 12);
    // The fake server counts a request until its handler returns, a moment after the client has
    // read [DONE] and may have started the next one: it can see one more than the cap, never two.
    EXPECT_GE(s["max_in_flight"].get<int>(), 3);
    EXPECT_LE(s["max_in_flight"].get<int>(), 4);
}

TEST(Benchmark, PoissonArrivalsSpreadTheRun) {
    FakeServer server({"--token-delay", "0"});
    BenchmarkConfig c = config_for(server, "sglang");
    c.request_rate = 50;  // 20 requests: about 0.4 s of arrivals
    NumpyRandom rng(1);
    double duration = 0;
    const auto out =
        send_requests(c, rows_of(std::vector<std::string>(20, "p"), 2), rng, false, &duration);
    double last_start = 0;
    for (const auto& o : out) {
        EXPECT_TRUE(o.success) << o.error;
        EXPECT_GE(o.start_s, last_start);  // sent in arrival order
        last_start = o.start_s;
    }
    EXPECT_GT(last_start, 0.1);
    EXPECT_LT(last_start, 2.0);
}

TEST(Benchmark, ManyConcurrentStreamsOnOneThread) {
    // Each request streams for about 2 s, so the requests overlap even when a busy machine is
    // slow to open the 600 connections (at 0.6 s a loaded CI machine reached only 254).
    FakeServer server({"--token-delay", "1.0"});
    BenchmarkConfig c = config_for(server, "sglang");
    c.max_concurrency = 1024;
    NumpyRandom rng(1);
    double duration = 0;
    const auto out =
        send_requests(c, rows_of(std::vector<std::string>(600, "p"), 2), rng, false, &duration);
    std::size_t ok = 0;
    for (const auto& o : out) {
        ok += o.success ? 1 : 0;
    }
    EXPECT_EQ(ok, out.size()) << (out.empty() ? "" : out.back().error);
    EXPECT_GT(stats(server)["max_in_flight"].get<int>(), 300);
}

TEST(Benchmark, FullRunWithWarmupAcceptLengthAndRetokenizedCount) {
    FakeServer server({"--accept-length", "2.5"});
    BenchmarkConfig c = config_for(server, "sglang");
    c.warmup_requests = 2;
    ByteCodec codec;
    NumpyRandom rng(1);
    const auto result = run_benchmark(c, rows_of({"one", "two", "FAIL500"}, 5), codec, rng);
    const BenchmarkMetrics& m = result.metrics;
    EXPECT_EQ(m.completed, 2);
    EXPECT_EQ(m.failed, 1);
    EXPECT_EQ(m.total_output, 10);
    EXPECT_EQ(m.total_output_retokenized, 2 * 25);  // "tok0 ... tok4 " is 25 bytes
    ASSERT_TRUE(m.accept_length.has_value());
    EXPECT_DOUBLE_EQ(*m.accept_length, 2.5);
    EXPECT_EQ(stats(server)["requests"], 2 + 3);
    const std::string failures = format_failures(result.outputs);
    EXPECT_NE(failures.find("1 of 3 requests failed"), std::string::npos) << failures;
    EXPECT_NE(failures.find("request 2: HTTP 500"), std::string::npos) << failures;
}

TEST(Benchmark, NonStreamAndModelDiscovery) {
    FakeServer server;
    EXPECT_EQ(discover_model(server.url()), "fake-model");
    for (const std::string backend : {"sglang", "openai", "openai-chat"}) {
        BenchmarkConfig c = config_for(server, backend);
        c.request.stream = false;
        NumpyRandom rng(1);
        double duration = 0;
        const auto out = send_requests(c, rows_of({"x"}, 3), rng, false, &duration);
        ASSERT_TRUE(out[0].success) << backend << ": " << out[0].error;
        EXPECT_EQ(out[0].output_len, 3);
        EXPECT_EQ(out[0].generated_text, "tok0 tok1 tok2 ");
        EXPECT_EQ(out[0].ttft_s, out[0].latency_s);
    }
}

}  // namespace
}  // namespace dsserve::bench
