#include "bench/eval_client.h"

#include <gtest/gtest.h>

#include <chrono>

#include "core/error.h"
#include "fake_server.h"

namespace dsserve::bench {
namespace {

TEST(CommonPrefix, WholeCharactersOnly) {
    EXPECT_EQ(common_prefix({"abcX", "abcY"}), "abc");
    EXPECT_EQ(common_prefix({"same", "same"}), "same");
    EXPECT_EQ(common_prefix({"x"}), "x");
    // "é" (C3 A9) and "è" (C3 A8) share a lead byte; the prefix must not keep it alone.
    EXPECT_EQ(common_prefix({"a\xC3\xA9", "a\xC3\xA8"}), "a");
}

TEST(GenerateAll, ResultsInOrderAndFailuresKept) {
    testing::FakeServer server({"--record"});
    check_server(server.url());
    const std::string shared(80, 'p');  // > 64 characters: one cache-warming request first
    const auto results =
        generate_all(server.url(), {shared + "1", shared + "FAIL500", shared + "3"},
                     {{"max_new_tokens", 2}}, 2, false);
    ASSERT_EQ(results.size(), 3u);
    EXPECT_TRUE(results[0].success);
    EXPECT_EQ(results[0].text, "tok0 tok1 ");
    EXPECT_EQ(results[0].completion_tokens, 2);
    EXPECT_FALSE(results[1].success);
    EXPECT_NE(results[1].error.find("HTTP 500"), std::string::npos);
    EXPECT_TRUE(results[2].success);
    const Json stats = Json::parse(http_fetch(server.url(), {"GET", "/stats", "", {}}).body);
    ASSERT_EQ(stats["requests"], 4);
    const Json& warm = stats["bodies"][0];
    EXPECT_EQ(warm["text"], shared);
    EXPECT_EQ(warm["sampling_params"]["max_new_tokens"], 0);
    EXPECT_THROW(check_server(Url::parse("http://127.0.0.1:1")), Error);
}

TEST(GenerateAll, AnUnansweredQuestionTimesOutAndTheRestComplete) {
    testing::FakeServer server;
    const auto results = generate_all(server.url(), {"q1", "q2 STALL", "q3"},
                                      {{"max_new_tokens", 2}}, 2, false, std::chrono::seconds(1));
    ASSERT_EQ(results.size(), 3u);
    EXPECT_TRUE(results[0].success) << results[0].error;
    EXPECT_FALSE(results[1].success);
    EXPECT_NE(results[1].error.find("timed out"), std::string::npos) << results[1].error;
    EXPECT_TRUE(results[2].success) << results[2].error;
}

}  // namespace
}  // namespace dsserve::bench
