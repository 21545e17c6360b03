#include "bench/backend.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace dsserve::bench {
namespace {

using std::chrono::milliseconds;

TEST(Backend, NamesAndEndpoints) {
    EXPECT_EQ(parse_backend("sglang"), Backend::kGenerate);
    EXPECT_EQ(parse_backend("dsserve"), Backend::kGenerate);
    EXPECT_EQ(parse_backend("sglang-oai"), Backend::kCompletions);
    EXPECT_EQ(parse_backend("openai"), Backend::kCompletions);
    EXPECT_EQ(parse_backend("sglang-oai-chat"), Backend::kChat);
    EXPECT_EQ(parse_backend("openai-chat"), Backend::kChat);
    EXPECT_THROW(parse_backend("trt"), Error);
    EXPECT_EQ(endpoint_path(Backend::kGenerate), "/generate");
    EXPECT_EQ(endpoint_path(Backend::kCompletions), "/v1/completions");
    EXPECT_EQ(endpoint_path(Backend::kChat), "/v1/chat/completions");
}

TEST(Backend, RequestBodiesAsBenchServingSendsThem) {
    RequestOptions opt;
    opt.model = "m";
    const Json gen = build_request_body(Backend::kGenerate, "hi", 7, opt);
    EXPECT_EQ(gen["text"], "hi");
    EXPECT_EQ(gen["sampling_params"],
              Json({{"temperature", 0.0}, {"max_new_tokens", 7}, {"ignore_eos", true}}));
    EXPECT_EQ(gen["stream"], true);
    const Json cmp = build_request_body(Backend::kCompletions, "hi", 7, opt);
    EXPECT_EQ(cmp["model"], "m");
    EXPECT_EQ(cmp["prompt"], "hi");
    EXPECT_EQ(cmp["max_tokens"], 7);
    EXPECT_EQ(cmp["best_of"], 1);
    EXPECT_EQ(cmp["ignore_eos"], true);
    const Json chat = build_request_body(Backend::kChat, "hi", 7, opt);
    EXPECT_EQ(chat["messages"], Json::parse(R"([{"role": "user", "content": "hi"}])"));
    EXPECT_EQ(chat["max_completion_tokens"], 7);

    opt.stream = false;
    opt.ignore_eos = false;
    opt.extra_body =
        Json::parse(R"({"stream_options": {"include_usage": true}, "temperature": 0.5})");
    const Json extra = build_request_body(Backend::kCompletions, "hi", 7, opt);
    EXPECT_EQ(extra["stream"], false);
    EXPECT_EQ(extra["ignore_eos"], false);
    EXPECT_EQ(extra["temperature"], 0.5);  // the extra body wins
    EXPECT_EQ(extra["stream_options"]["include_usage"], true);
}

// Feeds a body to a reader at 10 ms per piece and returns the result.
RequestOutput read(Backend backend, bool stream, int status, const std::vector<std::string>& pieces,
                   const std::string& transport_error = "", std::int64_t requested = 16) {
    const Clock::time_point t0{};
    ResponseReader reader(backend, stream, requested, t0);
    reader.on_status(status, status == 200 ? "OK" : "Internal Server Error");
    Clock::time_point t = t0;
    for (const std::string& piece : pieces) {
        t += milliseconds(10);
        reader.on_data(piece, t);
    }
    return reader.finish(transport_error, t + milliseconds(1));
}

std::string gen_event(const std::string& text, int tokens) {
    return Json({{"text", text}, {"meta_info", {{"completion_tokens", tokens}}}}).dump();
}

TEST(ResponseReader, GenerateStreamIsCumulativeAndSplitsItlPerToken) {
    const RequestOutput o = read(Backend::kGenerate, true, 200,
                                 {"data: " + gen_event("a", 1) + "\n\n",
                                  "data: " + gen_event("abc", 3) + "\n\n",   // 2 tokens in 10 ms
                                  "data: " + gen_event("abc", 3) + "\n\n",   // nothing new
                                  "data: " + gen_event("abcd", 4) + "\n\n",  // 20 ms after abc
                                  "data: [DONE]\n\n"});
    ASSERT_TRUE(o.success) << o.error;
    EXPECT_EQ(o.generated_text, "abcd");
    EXPECT_EQ(o.output_len, 4);
    EXPECT_NEAR(o.ttft_s, 0.010, 1e-9);
    ASSERT_EQ(o.itl_s.size(), 3u);
    EXPECT_NEAR(o.itl_s[0], 0.005, 1e-9);
    EXPECT_NEAR(o.itl_s[1], 0.005, 1e-9);
    EXPECT_NEAR(o.itl_s[2], 0.020, 1e-9);
    EXPECT_NEAR(o.latency_s, 0.050, 1e-9);  // the [DONE] line
}

TEST(ResponseReader, CompletionsCountsChunksAndTakesUsage) {
    const auto chunk = [](const std::string& text) {
        return "data: " + Json({{"choices", {{{"index", 0}, {"text", text}}}}}).dump() + "\n\n";
    };
    RequestOutput o = read(Backend::kCompletions, true, 200,
                           {chunk("x"), chunk(""), chunk("yz"), "data: [DONE]\n\n"}, "", 16);
    ASSERT_TRUE(o.success) << o.error;
    EXPECT_EQ(o.generated_text, "xyz");
    EXPECT_EQ(o.output_len, 16);  // no usage: the requested length, as bench_serving
    EXPECT_EQ(o.itl_s.size(), 1u);
    EXPECT_NEAR(o.itl_s[0], 0.020, 1e-9);
    o = read(Backend::kCompletions, true, 200,
             {chunk("x"),
              R"(data: {"choices": [], "usage": {"completion_tokens": 5}})"
              "\n\n",
              "data: [DONE]\n\n"});
    ASSERT_TRUE(o.success) << o.error;
    EXPECT_EQ(o.output_len, 5);
}

TEST(ResponseReader, ChatIgnoresRoleAndReasoningChunks) {
    const std::string role =
        R"(data: {"choices": [{"delta": {"role": "assistant", "content": ""}}]})";
    const std::string think = R"(data: {"choices": [{"delta": {"reasoning_content": "hmm"}}]})";
    const std::string a = R"(data: {"choices": [{"delta": {"content": "A"}}]})";
    const std::string b =
        R"(data: {"choices": [{"delta": {"content": "B", "reasoning_content": null}}]})";
    const RequestOutput o =
        read(Backend::kChat, true, 200,
             {role + "\n\n", think + "\n\n", a + "\n\n", b + "\n\n", "data: [DONE]\n\n"});
    ASSERT_TRUE(o.success) << o.error;
    EXPECT_EQ(o.generated_text, "AB");
    EXPECT_NEAR(o.ttft_s, 0.030, 1e-9);  // the first content chunk, not the role chunk
    ASSERT_EQ(o.itl_s.size(), 1u);
}

TEST(ResponseReader, NonStreamBodies) {
    RequestOutput o = read(Backend::kGenerate, false, 200,
                           {R"({"text": "hello", "meta_info": )", R"({"completion_tokens": 2}})"});
    ASSERT_TRUE(o.success) << o.error;
    EXPECT_EQ(o.generated_text, "hello");
    EXPECT_EQ(o.output_len, 2);
    EXPECT_EQ(o.ttft_s, o.latency_s);
    o = read(
        Backend::kChat, false, 200,
        {R"({"choices": [{"message": {"content": "hi"}}], "usage": {"completion_tokens": 9}})"});
    ASSERT_TRUE(o.success) << o.error;
    EXPECT_EQ(o.generated_text, "hi");
    EXPECT_EQ(o.output_len, 9);
}

TEST(ResponseReader, FailuresAreRecordedNotThrown) {
    RequestOutput o = read(Backend::kGenerate, true, 500, {R"({"message": "boom"})"});
    EXPECT_FALSE(o.success);
    EXPECT_NE(o.error.find("HTTP 500"), std::string::npos);
    EXPECT_NE(o.error.find("boom"), std::string::npos);

    o = read(Backend::kGenerate, true, 200, {"data: " + gen_event("a", 1) + "\n\ndata: {\"te"});
    EXPECT_FALSE(o.success);
    EXPECT_NE(o.error.find("malformed"), std::string::npos) << o.error;

    o = read(Backend::kGenerate, true, 200,
             {"data: " + gen_event("a", 1) + "\n\n", "data: {\"error\": {\"message\": \"x\"}}\n\n",
              "data: [DONE]\n\n"});
    EXPECT_FALSE(o.success);
    EXPECT_NE(o.error.find("server error"), std::string::npos) << o.error;

    o = read(Backend::kGenerate, true, 200, {"data: " + gen_event("a", 1) + "\n\n"});
    EXPECT_FALSE(o.success);
    EXPECT_NE(o.error.find("[DONE]"), std::string::npos) << o.error;

    o = read(Backend::kGenerate, true, 200, {"data: " + gen_event("a", 1) + "\n\n"},
             "read body: partial message");
    EXPECT_FALSE(o.success);
    EXPECT_EQ(o.error, "read body: partial message");

    o = read(Backend::kGenerate, true, 0, {}, "connect: Connection refused");
    EXPECT_FALSE(o.success);
    EXPECT_EQ(o.error, "connect: Connection refused");

    o = read(Backend::kGenerate, false, 200, {"not json"});
    EXPECT_FALSE(o.success);
}

}  // namespace
}  // namespace dsserve::bench
