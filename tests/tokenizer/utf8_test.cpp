#include "tokenizer/utf8.h"

#include <gtest/gtest.h>

#include <random>

namespace dsserve::tokenizer {
namespace {

const std::string kFffd(kReplacementChar);

TEST(Utf8Test, ValidSequences) {
    EXPECT_TRUE(is_valid_utf8(""));
    EXPECT_TRUE(is_valid_utf8("plain ascii, long enough to use the eight-byte path"));
    EXPECT_TRUE(is_valid_utf8("é中😀\xF4\x8F\xBF\xBF"));  // up to U+10FFFF
    EXPECT_TRUE(is_valid_utf8("\xEF\xBF\xBD"));
}

TEST(Utf8Test, IllFormedSequences) {
    EXPECT_FALSE(is_valid_utf8("\x80"));
    EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong
    EXPECT_FALSE(is_valid_utf8("\xE0\x80\xAF"));      // overlong
    EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
    EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
    EXPECT_FALSE(is_valid_utf8("\xF5\x80\x80\x80"));
    EXPECT_FALSE(is_valid_utf8("abcdefgh\xE4\xB8"));  // truncated at the end
}

// Expected values follow Unicode's "substitution of maximal subparts", as Rust's
// String::from_utf8_lossy and Python's errors="replace" apply it.
TEST(Utf8Test, LossyReplacesMaximalSubparts) {
    EXPECT_EQ(to_utf8_lossy("ok"), "ok");
    EXPECT_EQ(to_utf8_lossy("\xFF"), kFffd);
    EXPECT_EQ(to_utf8_lossy("a\x80z"), "a" + kFffd + "z");
    EXPECT_EQ(to_utf8_lossy("\xF0\x9F\x98"), kFffd);  // one truncated sequence
    EXPECT_EQ(to_utf8_lossy("\xF0\x9F\x98"
                            "a"),
              kFffd + "a");
    EXPECT_EQ(to_utf8_lossy("\xED\xA0\x80"), kFffd + kFffd + kFffd);  // ED may not take A0
    EXPECT_EQ(to_utf8_lossy("\xE0\x80\xAF"), kFffd + kFffd + kFffd);
    EXPECT_EQ(to_utf8_lossy("\xC0\xAF"), kFffd + kFffd);
    EXPECT_EQ(to_utf8_lossy("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);
    EXPECT_EQ(to_utf8_lossy("\xE4\xBD\xE4\xBD\xA0"), kFffd + "你");
}

TEST(Utf8Test, IncompleteTailIsHeldBackUntilTheEnd) {
    std::string out;
    EXPECT_EQ(append_utf8_lossy("ab\xE4\xBD", false, out), 2u);
    EXPECT_EQ(out, "ab");
    out.clear();
    EXPECT_EQ(append_utf8_lossy("ab\xE4\xBD", true, out), 4u);
    EXPECT_EQ(out, "ab" + kFffd);
    out.clear();
    // A tail that can never complete is not held back: ED cannot take A0, and A0 cannot lead.
    EXPECT_EQ(append_utf8_lossy("ab\xED\xA0", false, out), 4u);
    EXPECT_EQ(out, "ab" + kFffd + kFffd);
}

TEST(Utf8Test, StreamingInAnyChunksEqualsWholeConversion) {
    std::mt19937 rng(5);
    const std::string alphabet[] = {"a",    "é",    "中",   "😀",    "\x80", "\xE4",
                                    "\xBD", "\xF0", "\xED", "\xC0", "\xFF", "\x9F"};
    for (int round = 0; round < 2000; ++round) {
        std::string bytes;
        const int n = static_cast<int>(rng() % 12);
        for (int i = 0; i < n; ++i) {
            bytes += alphabet[rng() % std::size(alphabet)];
        }
        std::string streamed, pending;
        std::size_t pos = 0;
        while (pos < bytes.size()) {
            const std::size_t take = 1 + rng() % 3;
            pending += bytes.substr(pos, take);
            pos += take;
            pending.erase(0, append_utf8_lossy(pending, false, streamed));
        }
        append_utf8_lossy(pending, true, streamed);
        ASSERT_EQ(streamed, to_utf8_lossy(bytes)) << "round " << round;
        ASSERT_TRUE(is_valid_utf8(streamed));
    }
}

}  // namespace
}  // namespace dsserve::tokenizer
