#include "core/utf8.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace dsserve {
namespace {

std::vector<char32_t> decode_all(std::string_view text, std::vector<bool>* oks = nullptr) {
    std::vector<char32_t> out;
    size_t pos = 0;
    while (pos < text.size()) {
        bool ok = false;
        out.push_back(utf8_next(text, pos, &ok));
        if (oks != nullptr) {
            oks->push_back(ok);
        }
    }
    return out;
}

TEST(Utf8, LengthFromLead) {
    EXPECT_EQ(utf8_length_from_lead('a'), 1u);
    EXPECT_EQ(utf8_length_from_lead(0xC3), 2u);
    EXPECT_EQ(utf8_length_from_lead(0xE2), 3u);
    EXPECT_EQ(utf8_length_from_lead(0xF0), 4u);
    EXPECT_EQ(utf8_length_from_lead(0x85), 0u);  // continuation byte
    EXPECT_EQ(utf8_length_from_lead(0xF8), 0u);
    EXPECT_EQ(utf8_length_from_lead(0xFF), 0u);
}

TEST(Utf8, DecodesEachLength) {
    std::vector<bool> oks;
    EXPECT_EQ(decode_all("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", &oks),
              (std::vector<char32_t>{U'a', U'\u00E9', U'\u20AC', U'\U0001F600'}));
    EXPECT_EQ(oks, (std::vector<bool>{true, true, true, true}));
}

// Each byte of a broken sequence comes back alone, so a caller copying bytes through keeps them.
TEST(Utf8, BrokenSequencesStepOneByte) {
    std::vector<bool> oks;
    // A stray continuation byte, a lead with an ASCII byte after it, a sequence cut at the end.
    EXPECT_EQ(decode_all("\x85"
                         "\xC3("
                         "\xE2\x82",
                         &oks),
              (std::vector<char32_t>{0x85, 0xC3, U'(', 0xE2, 0x82}));
    EXPECT_EQ(oks, (std::vector<bool>{false, false, true, false, false}));
    size_t pos = 0;
    EXPECT_EQ(utf8_next("\xFF", pos), 0xFFu);  // `ok` may be left out
    EXPECT_EQ(pos, 1u);
}

// The text layers pass such input through as written, so it decodes as written too.
TEST(Utf8, SurrogatesAndOverlongFormsDecodeAsWritten) {
    std::vector<bool> oks;
    EXPECT_EQ(decode_all("\xED\xA0\x80\xC0\xAF", &oks), (std::vector<char32_t>{0xD800, U'/'}));
    EXPECT_EQ(oks, (std::vector<bool>{true, true}));
}

TEST(Utf8, AppendRoundTrips) {
    for (char32_t cp : {0x0u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xFFFFu, 0x10000u, 0x10FFFFu}) {
        std::string text;
        utf8_append(text, cp);
        EXPECT_EQ(text.size(), utf8_length_from_lead(static_cast<unsigned char>(text[0])));
        std::vector<bool> oks;
        EXPECT_EQ(decode_all(text, &oks), std::vector<char32_t>{cp});
        EXPECT_EQ(oks, std::vector<bool>{true});
    }
    std::string text;
    utf8_append(text, U'€');
    EXPECT_EQ(text, "\xE2\x82\xAC");
}

TEST(Utf8, PythonSpaceIsStrIsspace) {
    // Every code point that CPython 3.11's str.isspace() accepts.
    const std::vector<char32_t> spaces = {
        0x09,   0x0A,   0x0B,   0x0C,   0x0D,   0x1C,   0x1D,   0x1E,   0x1F,   0x20,
        0x85,   0xA0,   0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006,
        0x2007, 0x2008, 0x2009, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000};
    std::vector<char32_t> found;
    for (char32_t cp = 0; cp <= 0x10FFFF; ++cp) {
        if (is_python_space(cp)) {
            found.push_back(cp);
        }
    }
    EXPECT_EQ(found, spaces);
}

}  // namespace
}  // namespace dsserve
