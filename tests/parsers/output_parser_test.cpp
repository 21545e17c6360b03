#include "parsers/output_parser.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "core/error.h"
#include "parser_test_util.h"

namespace dsserve::parsers {
namespace {

using testing::describe;
using testing::expect_chunking_invariant;
using testing::run_chunks;

OutputParserOptions v32(bool thinking, std::vector<std::string> tools = {}) {
    return OutputParserOptions{"deepseek-v3", "deepseekv32", thinking, true, std::move(tools)};
}
OutputParserOptions v31(bool thinking) {
    return OutputParserOptions{"deepseek-v3", "deepseekv31", thinking, true, {}};
}

struct Expected {
    std::string content;
    std::optional<std::string> reasoning;
    std::vector<std::pair<std::string, std::string>> calls;  // name, arguments
};

struct Sample {
    const char* name;
    std::string text;
    OutputParserOptions options;
    Expected expected;
};

const std::string kWeatherBlock =
    "<｜DSML｜function_calls>\n"
    "<｜DSML｜invoke name=\"get_weather\">\n"
    "<｜DSML｜parameter name=\"location\" string=\"true\">Beijing</｜DSML｜parameter>\n"
    "<｜DSML｜parameter name=\"days\" string=\"false\">3</｜DSML｜parameter>\n"
    "</｜DSML｜invoke>\n"
    "<｜DSML｜invoke name=\"get_time\">\n"
    "<｜DSML｜parameter name=\"tz\" string=\"true\">Asia/Shanghai</｜DSML｜parameter>\n"
    "</｜DSML｜invoke>\n"
    "</｜DSML｜function_calls>";

const std::vector<std::pair<std::string, std::string>> kWeatherCalls = {
    {"get_weather", R"({"location": "Beijing", "days": 3})"},
    {"get_time", R"({"tz": "Asia/Shanghai"})"}};

std::vector<Sample> samples() {
    return {
        {"thinking_then_dsml",
         "The user wants the weather.</think>\n\n" + kWeatherBlock,
         v32(true),
         {"", "The user wants the weather.", kWeatherCalls}},
        {"chat_mode_dsml", "\n\n" + kWeatherBlock, v32(false), {"", std::nullopt, kWeatherCalls}},
        {"text_before_calls",
         "Let me check both for you. \n\n" + kWeatherBlock,
         v32(false),
         {"Let me check both for you.", std::nullopt, kWeatherCalls}},
        {"prose_after_block",
         "Checking.\n\n" + kWeatherBlock + "\n\nDone, see above.\n\n" + kWeatherBlock + "\nBye",
         v32(false),
         {"Checking.\nDone, see above.\nBye",
          std::nullopt,
          {kWeatherCalls[0], kWeatherCalls[1], kWeatherCalls[0], kWeatherCalls[1]}}},
        {"unicode_and_nested",
         "想一想</think>\n\n<｜DSML｜function_calls>\n<｜DSML｜invoke name=\"write\">\n"
         "<｜DSML｜parameter name=\"text\" string=\"true\">\n  北京 🌍 \"quoted\" back\\slash\n"
         "second\tline\u3000</｜DSML｜parameter>\n"
         "<｜DSML｜parameter name=\"meta\" string=\"false\">{\"a\":[1,2.50,{\"b\":\"\\u00e9\"}],"
         "\"big\":12345678901234567890,\"e\":1e5,\"n\":null}</｜DSML｜parameter>\n"
         "<｜DSML｜parameter name=\"flag\" string=\"false\">true</｜DSML｜parameter>\n"
         "<｜DSML｜parameter name=\"ratio\" string=\"false\"> 0.00001 </｜DSML｜parameter>\n"
         "<｜DSML｜parameter name=\"note\" string=\"false\">not json</｜DSML｜parameter>\n"
         "</｜DSML｜invoke>\n</｜DSML｜function_calls>",
         v32(true),
         {"",
          "想一想",
          {{"write",
            R"({"text": "北京 🌍 \"quoted\" back\\slash\nsecond\tline", "meta": {"a": [1, 2.5, {"b": "é"}], "big": 12345678901234567890, "e": 100000.0, "n": null}, "flag": true, "ratio": 1e-05, "note": "not json"})"}}}},
        {"json_body_and_self_closing",
         "<｜DSML｜function_calls>\n<｜DSML｜invoke name=\"f\">\n  {\"x\":1, \"y\": \"z\"}  \n"
         "</｜DSML｜invoke>\n<｜DSML｜invoke name=\"ping\"/>\n<｜DSML｜invoke name=\"empty\">\n"
         "</｜DSML｜invoke>\n<｜DSML｜invoke name=\"bad_json\">{\"x\": oops}</｜DSML｜invoke>\n"
         "</｜DSML｜function_calls>",
         v32(false),
         {"",
          std::nullopt,
          {{"f", R"({"x": 1, "y": "z"})"}, {"ping", "{}"}, {"empty", "{}"}, {"bad_json", "{}"}}}},
        {"truncated_in_value",
         "Sure.\n\n<｜DSML｜function_calls>\n<｜DSML｜invoke name=\"search\">\n"
         "<｜DSML｜parameter name=\"query\" string=\"true\">partial que",
         v32(false),
         {"Sure.", std::nullopt, {{"search", R"({"query": "partial que"})"}}}},
        {"truncated_in_tag",
         "\n\n<｜DSML｜function_calls>\n<｜DSML｜invoke name=\"search\">\n"
         "<｜DSML｜parameter name=\"query\" string=\"true\">x</｜DSML｜parameter>\n<｜DSML｜para",
         v32(false),
         {"", std::nullopt, {{"search", R"({"query": "x"})"}}}},
        {"opener_without_calls",
         "Text <｜DSML｜function_calls> oops <｜DSML｜invo",
         v32(false),
         {"Text <｜DSML｜function_calls> oops <｜DSML｜invo", std::nullopt, {}}},
        {"empty_closed_block",
         "A\n<｜DSML｜function_calls>\n</｜DSML｜function_calls>\nB",
         v32(false),
         {"A\nB", std::nullopt, {}}},
        {"marker_lookalikes_in_prose",
         "Compare a <b and <｜DSML｜functio n, also </think> and <think> here.\n",
         v32(false),
         {"Compare a <b and <｜DSML｜functio n, also </think> and <think> here.\n",
          std::nullopt,
          {}}},
        {"unterminated_reasoning",
         "Still thinking about <｜DSML｜function_calls> and more",
         v32(true),
         {"", "Still thinking about <｜DSML｜function_calls> and more", {}}},
        {"no_calls_chat",
         "Hello! How can I help?\n\n",
         v32(false),
         {"Hello! How can I help?\n\n", std::nullopt, {}}},
        {"empty_reasoning", "</think>Hi there", v32(true), {"Hi there", std::nullopt, {}}},
        {"leading_think_not_forced",
         "<think><think>abc</think>def",
         v32(false),
         {"def", "abc", {}}},
        {"think_only_prefix", "<thi", v32(false), {"<thi", std::nullopt, {}}},
        {"repeated_parameter",
         "<｜DSML｜function_calls><｜DSML｜invoke name=\"f\"><｜DSML｜parameter name=\"a\" "
         "string=\"true\">1</｜DSML｜parameter><｜DSML｜parameter name=\"a\" string=\"true\">2"
         "</｜DSML｜parameter><｜DSML｜parameter name=\"b\" string=\"false\">[1,2]"
         "</｜DSML｜invoke></｜DSML｜function_calls>",
         v32(false),
         {"", std::nullopt, {{"f", R"({"a": "1", "b": [1, 2]})"}}}},
        {"unknown_tool_dropped",
         "\n\n" + kWeatherBlock,
         v32(false, {"get_time"}),
         {"", std::nullopt, {{"get_time", R"({"tz": "Asia/Shanghai"})"}}}},
        {"unicode_space_around_block",
         "答案\u3000\n" + kWeatherBlock + "\u3000后文\u3000",
         v32(false),
         {"答案\n后文\u3000", std::nullopt, kWeatherCalls}},
        {"overlong_tag_is_not_a_tag",
         "<｜DSML｜function_calls><｜DSML｜invoke" + std::string(1500, ' ') +
             "name=\"f\"></｜DSML｜invoke><｜DSML｜invoke name=\"g\"></｜DSML｜invoke>"
             "</｜DSML｜function_calls>",
         v32(false),
         {"", std::nullopt, {{"g", "{}"}}}},
        {"stray_closing_markers",
         "Hello \n</｜DSML｜function_calls>world</｜DSML｜invo</｜DSML｜invoke>!\n\n" +
             kWeatherBlock + "</｜DSML｜function_calls>",
         v32(false),
         {"Hello \nworld</｜DSML｜invo!", std::nullopt, kWeatherCalls}},
        {"v31_stray_closing_markers",
         "a<｜tool▁call▁end｜>b<｜tool▁calls▁end｜>c",
         v31(false),
         {"abc", std::nullopt, {}}},
        {"v31_calls",
         "Plan.</think>I'll look.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather"
         "<｜tool▁sep｜>{\"location\":\"Tokyo\"}<｜tool▁call▁end｜><｜tool▁call▁begin｜>"
         "get_weather<｜tool▁sep｜>{\"location\": \"Paris\", \"units\": [\"c\", 1.50], "
         "\"note\": \"雨\\n\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
         v31(true),
         {"I'll look.",
          "Plan.",
          {{"get_weather", R"({"location": "Tokyo"})"},
           {"get_weather", R"({"location": "Paris", "units": ["c", 1.5], "note": "雨\n"})"}}}},
        {"v31_malformed",
         "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>f<｜tool▁sep｜>{\"a\": 1, oops}"
         "<｜tool▁call▁end｜><｜tool▁call▁begin｜>no_sep<｜tool▁call▁end｜>"
         "<｜tool▁call▁begin｜>g<｜tool▁sep｜>[1, 2]<｜tool▁call▁end｜>"
         "<｜tool▁call▁begin｜>h<｜tool▁sep｜>{\"s\": \"cut",
         v31(false),
         {"", std::nullopt, {{"f", R"({"a": 1})"}, {"g", "{}"}, {"h", R"({"s": "cut"})"}}}},
        {"v31_chat_no_calls",
         "Just text <｜tool▁calls▁beg",
         v31(false),
         {"Just text <｜tool▁calls▁beg", std::nullopt, {}}},
    };
}

void expect_message(const ParsedMessage& got, const Expected& want) {
    EXPECT_EQ(got.content, want.content);
    EXPECT_EQ(got.reasoning_content, want.reasoning);
    ASSERT_EQ(got.tool_calls.size(), want.calls.size()) << describe(got);
    for (size_t i = 0; i < want.calls.size(); ++i) {
        EXPECT_EQ(got.tool_calls[i].index, static_cast<int>(i));
        EXPECT_EQ(got.tool_calls[i].name, want.calls[i].first);
        EXPECT_EQ(got.tool_calls[i].arguments, want.calls[i].second);
        EXPECT_TRUE(std::regex_match(got.tool_calls[i].id, std::regex("call_[0-9a-f]{24}")))
            << got.tool_calls[i].id;
    }
}

TEST(OutputParserTest, NonStreamingSamples) {
    for (const Sample& sample : samples()) {
        SCOPED_TRACE(sample.name);
        expect_message(OutputParser::parse(sample.text, sample.options), sample.expected);
    }
}

TEST(OutputParserTest, EveryChunkingAssemblesToTheNonStreamingMessage) {
    for (const Sample& sample : samples()) {
        SCOPED_TRACE(sample.name);
        expect_chunking_invariant(sample.text, sample.options);
    }
}

TEST(OutputParserTest, CallNameComesFirstThenArgumentFragments) {
    std::string text = "\n\n" + kWeatherBlock;
    std::vector<ParsedDelta> deltas;
    run_chunks(testing::byte_chunks(text), v32(false), &deltas);
    std::vector<std::string> fragments;
    int announced = 0;
    for (const ParsedDelta& delta : deltas) {
        EXPECT_EQ(delta.content, "");
        for (const ToolCallDelta& item : delta.tool_calls) {
            if (item.name) {
                EXPECT_EQ(item.index, announced++);
                EXPECT_TRUE(item.id.has_value());
                EXPECT_EQ(item.arguments, "");
            } else {
                EXPECT_EQ(item.index, announced - 1);
                EXPECT_FALSE(item.id.has_value());
                if (item.index == 0) {
                    fragments.push_back(item.arguments);
                }
            }
        }
    }
    EXPECT_EQ(announced, 2);
    // The arguments stream while the value is being written, not only at the invoke's end.
    ASSERT_GT(fragments.size(), 5u);
    EXPECT_EQ(fragments[0], "{");
    EXPECT_EQ(fragments[1], "\"location\": \"");
    EXPECT_EQ(fragments[2], "B");
}

TEST(OutputParserTest, ReasoningDeltasStreamBeforeTheEndMarker) {
    OutputParser parser(v32(true));
    EXPECT_EQ(parser.push("Let me think").reasoning_content, "Let me think");
    ParsedDelta partial = parser.push(" more</thi");
    EXPECT_EQ(partial.reasoning_content, " more");
    ParsedDelta end = parser.push("nk>Answer");
    EXPECT_EQ(end.reasoning_content, "");
    EXPECT_EQ(end.content, "Answer");
    EXPECT_TRUE(parser.finish().empty());
}

TEST(OutputParserTest, StreamReasoningOffDeliversReasoningInOnePiece) {
    OutputParserOptions options = v32(true);
    options.stream_reasoning = false;
    OutputParser parser(options);
    EXPECT_TRUE(parser.push("step one, ").empty());
    EXPECT_TRUE(parser.push("step two").empty());
    ParsedDelta delta = parser.push("</think>ok");
    EXPECT_EQ(delta.reasoning_content, "step one, step two");
    EXPECT_EQ(delta.content, "ok");
}

TEST(OutputParserTest, ThinkingOffKeepsEverythingAsContent) {
    // A completion in chat mode that happens to contain the end marker is still content.
    ParsedMessage m = OutputParser::parse("plan</think>answer", v32(false));
    EXPECT_EQ(m.content, "plan</think>answer");
    EXPECT_FALSE(m.reasoning_content.has_value());
    // Same text with thinking on (the prompt ended with <think>).
    m = OutputParser::parse("plan</think>answer", v32(true));
    EXPECT_EQ(m.content, "answer");
    EXPECT_EQ(m.reasoning_content, "plan");
}

TEST(OutputParserTest, NoParsersPassTextThrough) {
    OutputParserOptions options{"none", "", true, true, {}};
    ParsedMessage m = OutputParser::parse("a</think>\n\n" + kWeatherBlock, options);
    EXPECT_EQ(m.content, "a</think>\n\n" + kWeatherBlock);
    EXPECT_FALSE(m.reasoning_content.has_value());
    EXPECT_TRUE(m.tool_calls.empty());
}

TEST(OutputParserTest, ToolParserWithoutReasoningParser) {
    OutputParserOptions options{"", "deepseekv32", false, true, {}};
    ParsedMessage m = OutputParser::parse("x</think>\n\n" + kWeatherBlock, options);
    EXPECT_EQ(m.content, "x</think>");
    EXPECT_EQ(m.tool_calls.size(), 2u);
}

TEST(OutputParserTest, UnknownParserNamesListTheValidOnes) {
    try {
        OutputParser parser(OutputParserOptions{"deepseek-r1", "", false, true, {}});
        FAIL() << "accepted an unknown reasoning parser";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("deepseek-v3"), std::string::npos) << e.what();
    }
    try {
        OutputParser parser(OutputParserOptions{"", "qwen25", false, true, {}});
        FAIL() << "accepted an unknown tool parser";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("deepseekv32, deepseekv31"), std::string::npos)
            << e.what();
    }
}

TEST(OutputParserTest, FinishReasonRewrite) {
    EXPECT_EQ(rewrite_finish_reason("stop", true), "tool_calls");
    EXPECT_EQ(rewrite_finish_reason("stop", false), "stop");
    EXPECT_EQ(rewrite_finish_reason("length", true), "length");
    EXPECT_EQ(rewrite_finish_reason("abort", true), "abort");
    OutputParser parser(v32(false));
    parser.push("\n\n<｜DSML｜function_calls>\n<｜DSML｜invoke name=\"f\"");
    EXPECT_FALSE(parser.has_tool_calls());
    parser.push(">");
    EXPECT_TRUE(parser.has_tool_calls());
}

TEST(OutputParserTest, SplitInsideUtf8NeverYieldsBrokenCharacters) {
    std::string text =
        "思考</think>答案：北京\n\n<｜DSML｜function_calls>\n<｜DSML｜invoke "
        "name=\"f\">\n<｜DSML｜parameter name=\"city\" string=\"true\">杭州"
        "</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜function_calls>";
    testing::expect_chunking_invariant(text, v32(true));  // checks every delta is valid UTF-8
    // Invalid UTF-8 goes through without a crash and the invariant still holds.
    std::string bad = "ok \xE4\xBD</think>x\xFF\xFE<｜DSML｜function_calls>";
    testing::expect_chunking_invariant(bad, v32(true), 5);
}

TEST(OutputParserTest, MessageJsonHasOpenAiShape) {
    ParsedMessage m = OutputParser::parse("r</think>\n\n" + kWeatherBlock, v32(true));
    Json json = message_to_json(m);
    EXPECT_EQ(json["content"], "");
    EXPECT_EQ(json["reasoning_content"], "r");
    ASSERT_EQ(json["tool_calls"].size(), 2u);
    EXPECT_EQ(json["tool_calls"][1]["index"], 1);
    EXPECT_EQ(json["tool_calls"][1]["type"], "function");
    EXPECT_EQ(json["tool_calls"][1]["function"]["name"], "get_time");
    EXPECT_EQ(json["tool_calls"][1]["function"]["arguments"], R"({"tz": "Asia/Shanghai"})");
    Json plain = message_to_json(OutputParser::parse("hi", v32(false)));
    EXPECT_TRUE(plain["reasoning_content"].is_null());
    EXPECT_TRUE(plain["tool_calls"].is_null());
}

}  // namespace
}  // namespace dsserve::parsers
