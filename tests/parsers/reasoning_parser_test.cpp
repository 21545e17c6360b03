#include "parsers/reasoning_parser.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace dsserve::parsers {
namespace {

TEST(ReasoningParserTest, NonStreamingSplit) {
    auto r = ReasoningParser::parse("think</think>answer", true);
    EXPECT_EQ(r.reasoning, "think");
    EXPECT_EQ(r.content, "answer");
    r = ReasoningParser::parse("think</think>answer</think>more", true);  // first marker only
    EXPECT_EQ(r.reasoning, "think");
    EXPECT_EQ(r.content, "answer</think>more");
    r = ReasoningParser::parse("cut off mid-thought", true);
    EXPECT_EQ(r.reasoning, "cut off mid-thought");
    EXPECT_EQ(r.content, "");
    r = ReasoningParser::parse("<think><think>a</think>\n\nb", false);
    EXPECT_EQ(r.reasoning, "a");
    EXPECT_EQ(r.content, "\n\nb");  // no trimming
    r = ReasoningParser::parse("plain text with <think> in it</think>", false);
    EXPECT_EQ(r.reasoning, "");
    EXPECT_EQ(r.content, "plain text with <think> in it</think>");
    r = ReasoningParser::parse("", true);
    EXPECT_EQ(r.reasoning, "");
    EXPECT_EQ(r.content, "");
}

TEST(ReasoningParserTest, HoldsPartialMarkersUntilDecided) {
    ReasoningParser parser(/*force_reasoning=*/true, /*stream_reasoning=*/true);
    auto d = parser.push("abc<");
    EXPECT_EQ(d.reasoning, "abc");
    d = parser.push("/th");
    EXPECT_EQ(d.reasoning, "");
    d = parser.push("ought>");  // "</thought>" is not the marker: released as reasoning
    EXPECT_EQ(d.reasoning, "</thought>");
    d = parser.push("</thi");
    EXPECT_EQ(d.reasoning, "");
    d = parser.push("nk>x");
    EXPECT_EQ(d.reasoning, "");
    EXPECT_EQ(d.content, "x");
    d = parser.push("</think>");
    EXPECT_EQ(d.content, "</think>");
    d = parser.finish();
    EXPECT_EQ(d.reasoning, "");
    EXPECT_EQ(d.content, "");
}

TEST(ReasoningParserTest, UnfinishedMarkerAtEndIsReleased) {
    ReasoningParser parser(true, true);
    EXPECT_EQ(parser.push("abc</thin").reasoning, "abc");
    EXPECT_EQ(parser.finish().reasoning, "</thin");

    ReasoningParser chat(false, true);
    EXPECT_EQ(chat.push("<thin").content, "");
    EXPECT_EQ(chat.finish().content, "<thin");
}

TEST(ReasoningParserTest, LeadingThinkIsStrippedWhenForced) {
    ReasoningParser parser(true, true);
    EXPECT_EQ(parser.push("<think>").reasoning, "");
    auto d = parser.push("x</think>y");
    EXPECT_EQ(d.reasoning, "x");
    EXPECT_EQ(d.content, "y");
}

TEST(ReasoningParserTest, NameCheck) {
    EXPECT_NO_THROW(check_reasoning_parser_name("deepseek-v3"));
    EXPECT_NO_THROW(check_reasoning_parser_name("none"));
    EXPECT_NO_THROW(check_reasoning_parser_name(""));
    EXPECT_THROW(check_reasoning_parser_name("deepseek-r1"), Error);
}

}  // namespace
}  // namespace dsserve::parsers
