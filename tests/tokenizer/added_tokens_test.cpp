#include "tokenizer/added_tokens.h"

#include <gtest/gtest.h>

namespace dsserve::tokenizer {
namespace {

AddedToken token(std::int32_t id, std::string content) {
    AddedToken t;
    t.id = id;
    t.content = std::move(content);
    return t;
}

// Segments as readable strings: "[id]" for tokens, the text otherwise.
std::vector<std::string> split(const AddedTokenMatcher& m, std::string_view text) {
    std::vector<Segment> segments;
    m.split(text, 0, text.size(), segments);
    std::vector<std::string> out;
    for (const Segment& s : segments) {
        const std::string_view body = text.substr(s.begin, s.end - s.begin);
        out.push_back(s.id == Segment::kTextSegment
                          ? std::string(body)
                          : "[" + std::to_string(s.id) + ":" + std::string(body) + "]");
    }
    return out;
}

using Parts = std::vector<std::string>;

TEST(AddedTokenMatcherTest, LeftmostLongest) {
    const AddedTokenMatcher m({token(1, "ab"), token(2, "abc"), token(3, "bcd"), token(4, "d")});
    EXPECT_EQ(split(m, "abcd"), (Parts{"[2:abc]", "[4:d]"}));
    EXPECT_EQ(split(m, "xbcdx"), (Parts{"x", "[3:bcd]", "x"}));
    EXPECT_EQ(split(m, "aab"), (Parts{"a", "[1:ab]"}));
    EXPECT_EQ(split(m, "none here"), (Parts{"none here"}));
    EXPECT_EQ(split(m, ""), Parts{});
}

TEST(AddedTokenMatcherTest, OnlyTheGivenRangeIsSearched) {
    const AddedTokenMatcher m({token(7, "<t>")});
    const std::string text = "<t>a<t>b<t>";
    std::vector<Segment> segments;
    m.split(text, 1, 9, segments);  // "t>a<t>b<"
    ASSERT_EQ(segments.size(), 3u);
    EXPECT_EQ(segments[0].begin, 1u);
    EXPECT_EQ(segments[0].end, 4u);
    EXPECT_EQ(segments[1].id, 7);
    EXPECT_EQ(segments[2].end, 9u);
}

TEST(AddedTokenMatcherTest, LstripAndRstripTakeTheSurroundingWhitespace) {
    AddedToken t = token(5, "<m>");
    t.lstrip = true;
    t.rstrip = true;
    const AddedTokenMatcher m({t});
    EXPECT_EQ(split(m, "Hi <m> there\t<m>\t<m>\u2000"),
              (Parts{"Hi", "[5: <m> ]", "there", "[5:\t<m>\t]", "[5:<m>\u2000]"}));
}

TEST(AddedTokenMatcherTest, SingleWordNeedsNonWordNeighbours) {
    AddedToken t = token(5, "<m>");
    t.single_word = true;
    const AddedTokenMatcher m({t});
    EXPECT_EQ(split(m, "<m> My name <m> A<m> <m>ony <m>"),
              (Parts{"[5:<m>]", " My name ", "[5:<m>]", " A<m> <m>ony ", "[5:<m>]"}));
    // Punctuation is not a word character; a combining mark is.
    EXPECT_EQ(split(m, "<m>, <m>- \u25cc\u0330<m>"),
              (Parts{"[5:<m>]", ", ", "[5:<m>]", "- \u25cc\u0330<m>"}));
}

TEST(AddedTokenMatcherTest, FirstListedOfTwoEqualContentsWins) {
    const AddedTokenMatcher m({token(1, "x"), token(2, "x")});
    EXPECT_EQ(split(m, "x"), (Parts{"[1:x]"}));
}

}  // namespace
}  // namespace dsserve::tokenizer
