#include "parsers/tool_parser.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "core/error.h"

namespace dsserve::parsers {
namespace {

TEST(ToolParserTest, CallIdsAreUuid4Prefixes) {
    std::set<std::string> ids;
    const std::regex uuid4_prefix("call_[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{7}");
    for (int i = 0; i < 1000; ++i) {
        std::string id = make_tool_call_id();
        ASSERT_TRUE(std::regex_match(id, uuid4_prefix)) << id;
        ids.insert(id);
    }
    EXPECT_EQ(ids.size(), 1000u);
}

TEST(ToolParserTest, FactoryValidatesNames) {
    EXPECT_NE(make_tool_parser("deepseekv32", {}), nullptr);
    EXPECT_NE(make_tool_parser("deepseekv31", {}), nullptr);
    EXPECT_THROW(make_tool_parser("deepseekv3", {}), Error);
    EXPECT_THROW(make_tool_parser("none", {}), Error);
    try {
        check_tool_parser_name("hermes");
        FAIL();
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(),
                     "unknown tool-call parser 'hermes' (valid: deepseekv32, deepseekv31, none)");
    }
}

TEST(ToolParserTest, SpecialeRejectsToolParsers) {
    EXPECT_THROW(check_tool_parser_allowed("deepseek-ai/DeepSeek-V3.2-Speciale", "deepseekv32"),
                 Error);
    EXPECT_THROW(check_tool_parser_allowed("DeepSeek-V3.2-speciale", "deepseekv31"), Error);
    EXPECT_NO_THROW(check_tool_parser_allowed("deepseek-ai/DeepSeek-V3.2-Speciale", "none"));
    EXPECT_NO_THROW(check_tool_parser_allowed("deepseek-ai/DeepSeek-V3.2-Speciale", ""));
    EXPECT_NO_THROW(check_tool_parser_allowed("deepseek-ai/DeepSeek-V3.2", "deepseekv32"));
    try {
        check_tool_parser_allowed("DeepSeek-V3.2-Speciale", "deepseekv32");
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("does not support tool calls"), std::string::npos);
    }
}

// Streams the tool parser over 1-byte chunks and returns every argument fragment of call 0.
std::vector<std::string> fragments_of_first_call(std::string_view parser, std::string_view text) {
    auto p = make_tool_parser(parser, {});
    std::vector<std::string> fragments;
    auto collect = [&](const ToolDelta& d) {
        for (const ToolCallDelta& item : d.calls) {
            if (item.index == 0 && !item.name) {
                fragments.push_back(item.arguments);
            }
        }
    };
    for (char c : text) {
        collect(p->push(std::string_view(&c, 1)));
    }
    collect(p->finish());
    return fragments;
}

TEST(ToolParserTest, DsmlArgumentsGrowWithTheValue) {
    auto fragments = fragments_of_first_call(
        "deepseekv32",
        "<｜DSML｜function_calls>\n<｜DSML｜invoke name=\"f\">\n"
        "<｜DSML｜parameter name=\"q\" string=\"true\">  ab c  </｜DSML｜parameter>\n"
        "<｜DSML｜parameter name=\"n\" string=\"false\">42</｜DSML｜parameter>\n"
        "</｜DSML｜invoke>\n</｜DSML｜function_calls>");
    std::vector<std::string> want = {"{",  "\"q\": \"", "a",  "b", " c",
                                     "\"", ", \"n\": ", "42", "}"};
    EXPECT_EQ(fragments, want);
}

TEST(ToolParserTest, V31ArgumentsStreamNormalized) {
    auto fragments = fragments_of_first_call(
        "deepseekv31",
        "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>f<｜tool▁sep｜>{\"q\":\"ab\",\"n\":4.0}"
        "<｜tool▁call▁end｜><｜tool▁calls▁end｜>");
    std::string joined;
    for (const auto& f : fragments) {
        joined += f;
    }
    EXPECT_EQ(joined, R"({"q": "ab", "n": 4.0})");
    ASSERT_GE(fragments.size(), 4u);
    EXPECT_EQ(fragments[0], "{");
    EXPECT_EQ(fragments[1], "\"q\": \"");
    EXPECT_EQ(fragments[2], "a");
}

}  // namespace
}  // namespace dsserve::parsers
