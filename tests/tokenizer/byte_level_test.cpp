#include "tokenizer/byte_level.h"

#include <gtest/gtest.h>

#include <set>

namespace dsserve::tokenizer {
namespace {

TEST(ByteLevelTest, KnownSymbols) {
    EXPECT_EQ(bytes_to_symbols(" "), "Ġ");
    EXPECT_EQ(bytes_to_symbols("\n"), "Ċ");
    EXPECT_EQ(bytes_to_symbols("a!~"), "a!~");
    EXPECT_EQ(bytes_to_symbols(std::string(1, '\0')), "Ā");
    EXPECT_EQ(bytes_to_symbols("\xAD"), "Ń");  // the soft hyphen is the last remapped byte
    EXPECT_EQ(bytes_to_symbols("é"), "Ã©");
}

TEST(ByteLevelTest, EveryByteRoundTripsThroughItsOwnSymbol) {
    std::set<std::string> symbols;
    for (int b = 0; b < 256; ++b) {
        const std::string byte(1, static_cast<char>(b));
        const std::string symbol = bytes_to_symbols(byte);
        symbols.insert(symbol);
        EXPECT_EQ(symbols_to_bytes(symbol), byte) << b;
    }
    EXPECT_EQ(symbols.size(), 256u);
}

TEST(ByteLevelTest, TextOutsideTheAlphabetIsRejected) {
    EXPECT_EQ(symbols_to_bytes("<｜User｜>"), std::nullopt);
    EXPECT_EQ(symbols_to_bytes("Ġ中"), std::nullopt);
    EXPECT_EQ(symbols_to_bytes("\xC4"), std::nullopt);  // not UTF-8
    EXPECT_EQ(symbols_to_bytes("<think>"), "<think>");
}

}  // namespace
}  // namespace dsserve::tokenizer
