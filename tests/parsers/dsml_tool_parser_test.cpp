// The official round trip: DeepSeek's encoder renders assistant messages (reasoning, content,
// tool calls) into DSML in data/encoding/deepseek-v3.2/test_output*.txt; parsing each rendered
// completion must give the message's tool calls back, arguments byte for byte.
#include "parsers/dsml_tool_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/file.h"
#include "core/json.h"
#include "parser_test_util.h"
#include "parsers/output_parser.h"

namespace dsserve::parsers {
namespace {

constexpr std::string_view kEos = "<｜end▁of▁sentence｜>";

struct Completion {
    std::string text;
    bool thinking = false;  // the prompt before it ended with <think>
};

// Splits a rendered conversation into the model's completions: each runs from the end of its
// generation prompt (`<｜Assistant｜>` or a tool-results block, then <think> or </think>) to EOS.
std::vector<Completion> completions(const std::string& rendered) {
    static const std::vector<std::string> kPromptEnds = {
        "<｜Assistant｜><think>", "<｜Assistant｜></think>", "</function_results>\n\n<think>",
        "</function_results>\n\n</think>"};
    std::vector<Completion> out;
    size_t from = 0;
    for (size_t eos = rendered.find(kEos); eos != std::string::npos;
         eos = rendered.find(kEos, from)) {
        std::string_view turn = std::string_view(rendered).substr(from, eos - from);
        size_t best = std::string::npos;
        size_t best_end = 0;
        bool thinking = false;
        for (const std::string& end : kPromptEnds) {
            size_t pos = turn.rfind(end);
            if (pos != std::string::npos && (best == std::string::npos || pos > best)) {
                best = pos;
                best_end = pos + end.size();
                thinking = !end.ends_with("</think>");
            }
        }
        EXPECT_NE(best, std::string::npos) << "no generation prompt before EOS at " << eos;
        out.push_back(Completion{std::string(turn.substr(best_end)), thinking});
        from = eos + kEos.size();
    }
    return out;
}

void check_round_trip(const std::string& name) {
    SCOPED_TRACE(name);
    std::string dir = std::string(DSSERVE_DATA_DIR) + "/encoding/deepseek-v3.2/";
    Json input = Json::parse(read_file(dir + "test_input" + name + ".json"));
    std::vector<Completion> turns = completions(read_file(dir + "test_output" + name + ".txt"));
    std::vector<Json> assistants;
    for (const Json& message : input["messages"]) {
        if (message["role"] == "assistant") {
            assistants.push_back(message);
        }
    }
    ASSERT_EQ(turns.size(), assistants.size());
    size_t calls_checked = 0;
    for (size_t i = 0; i < turns.size(); ++i) {
        SCOPED_TRACE("assistant turn " + std::to_string(i));
        const Json& want = assistants[i];
        OutputParserOptions options{"deepseek-v3", "deepseekv32", turns[i].thinking, true, {}};
        ParsedMessage got = OutputParser::parse(turns[i].text, options);

        EXPECT_EQ(got.content, want.value("content", Json("")).is_null()
                                   ? std::string()
                                   : want.value("content", std::string()));
        if (turns[i].thinking) {
            EXPECT_EQ(got.reasoning_content, want["reasoning_content"].get<std::string>());
        } else {
            EXPECT_FALSE(got.reasoning_content.has_value());
        }
        Json want_calls = want.value("tool_calls", Json::array());
        ASSERT_EQ(got.tool_calls.size(), want_calls.size());
        for (size_t k = 0; k < want_calls.size(); ++k) {
            EXPECT_EQ(got.tool_calls[k].name, want_calls[k]["function"]["name"]);
            EXPECT_EQ(got.tool_calls[k].arguments, want_calls[k]["function"]["arguments"]);
            ++calls_checked;
        }
        // Completions up to 1200 bytes: every split point; longer ones (up to 7.5 KB): about 300
        // evenly spaced ones, to keep the sanitizer run short. 1-byte chunks always.
        size_t stride = turns[i].text.size() > 1200 ? turns[i].text.size() / 300 : 1;
        testing::expect_chunking_invariant(turns[i].text, options, 20, stride);
    }
    EXPECT_GT(calls_checked, 0u);
}

TEST(DsmlRoundTripTest, WeatherConversation) {
    check_round_trip("");
}
TEST(DsmlRoundTripTest, SearchWithDate) {
    check_round_trip("_search_w_date");
}
TEST(DsmlRoundTripTest, SearchWithoutDate) {
    check_round_trip("_search_wo_date");
}

TEST(DsmlArgumentsTest, BuildsFromParameterTags) {
    DsmlArguments args;
    std::string out =
        args.push("<｜DSML｜parameter name=\"a\" string=\"true\">x</｜DSML｜parameter>");
    out += args.push("junk <｜DSML｜parameter name=\"b\" string=\"false\">[1, 2.0]");
    out += args.finish();  // body ended without </｜DSML｜parameter>: value closed as read
    EXPECT_EQ(out, R"({"a": "x", "b": [1, 2.0]})");
}

TEST(DsmlArgumentsTest, RejectsMalformedTags) {
    DsmlArguments args;
    std::string out = args.push(
        "<｜DSML｜parameter name=\"\" string=\"true\">empty name</｜DSML｜parameter>"
        "<｜DSML｜parameter name=\"a\">no string attr</｜DSML｜parameter>"
        "<｜DSML｜parametername=\"a\" string=\"true\">no space</｜DSML｜parameter>"
        "<｜DSML｜parameter  name=\"ok\"\nstring=\"maybe\" >7</｜DSML｜parameter>");
    out += args.finish();
    EXPECT_EQ(out, R"({"ok": 7})");
}

}  // namespace
}  // namespace dsserve::parsers
