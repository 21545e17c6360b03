#include "parsers/text.h"

#include <gtest/gtest.h>

namespace dsserve::parsers {
namespace {

TEST(TextTest, PartialMarkerSuffix) {
    EXPECT_EQ(partial_marker_suffix("abc</thi", {"</think>"}), 5u);
    EXPECT_EQ(partial_marker_suffix("abc</think>", {"</think>"}), 0u);  // whole marker: not partial
    EXPECT_EQ(partial_marker_suffix("abc<", {"</think>", "<think>"}), 1u);
    EXPECT_EQ(partial_marker_suffix("x<th", {"</think>", "<think>"}), 3u);
    EXPECT_EQ(partial_marker_suffix("", {"</think>"}), 0u);
    EXPECT_EQ(partial_marker_suffix("<｜DS", {"<｜DSML｜function_calls>"}), 6u);  // ｜ is 3 bytes
}

TEST(TextTest, FindFirstMarker) {
    size_t which = 9;
    EXPECT_EQ(find_first_marker("xx</b><a>", 0, {"<a>", "</b>"}, &which), 2u);
    EXPECT_EQ(which, 1u);
    EXPECT_EQ(find_first_marker("xx", 0, {"<a>"}, &which), std::string_view::npos);
}

TEST(TextTest, PythonStripRemovesUnicodeSpace) {
    EXPECT_EQ(python_strip(" \t\n a b \r\n"), "a b");
    EXPECT_EQ(python_strip("\u3000\u00a0北京\u2028\u200a"), "北京");
    EXPECT_EQ(python_strip("\x1c x \x1f"), "x");
    EXPECT_EQ(python_strip("   "), "");
    EXPECT_EQ(python_strip("\u200b x"), "\u200b x");   // zero-width space is not whitespace
    EXPECT_EQ(trailing_space_bytes("a\xE3\x80"), 0u);  // incomplete sequence: not whitespace
}

TEST(TextTest, Utf8CompletePrefix) {
    EXPECT_EQ(utf8_complete_prefix("abc"), 3u);
    EXPECT_EQ(utf8_complete_prefix("a\xE5\x8C"), 1u);      // first two bytes of 北
    EXPECT_EQ(utf8_complete_prefix("a\xE5\x8C\x97"), 4u);  // whole 北
    EXPECT_EQ(utf8_complete_prefix("a\xF0\x9F\x8C"), 1u);  // three bytes of an emoji
    EXPECT_EQ(utf8_complete_prefix("a\x80\x80\x80"), 4u);  // stray continuations pass
}

}  // namespace
}  // namespace dsserve::parsers
