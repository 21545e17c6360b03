#include "tokenizer/byte_level.h"

#include <array>
#include <cstdint>

#include "tokenizer/utf8.h"

namespace dsserve::tokenizer {
namespace {

struct Alphabet {
    std::array<char32_t, 256> symbol{};    // byte -> code point
    std::array<std::int16_t, 324> byte{};  // code point (< 324) -> byte, -1 if none

    Alphabet() {
        byte.fill(-1);
        char32_t next = 256;
        for (int b = 0; b < 256; ++b) {
            const bool printable =
                (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            symbol[b] = printable ? static_cast<char32_t>(b) : next++;
            byte[symbol[b]] = static_cast<std::int16_t>(b);
        }
    }
};

const Alphabet& alphabet() {
    static const Alphabet instance;
    return instance;
}

void append_code_point(std::string& out, char32_t c) {
    if (c < 0x80) {
        out += static_cast<char>(c);
    } else {
        // Every symbol is below U+0800.
        out += static_cast<char>(0xC0 | (c >> 6));
        out += static_cast<char>(0x80 | (c & 0x3F));
    }
}

}  // namespace

std::string bytes_to_symbols(std::string_view bytes) {
    const Alphabet& a = alphabet();
    std::string out;
    out.reserve(bytes.size() * 2);
    for (char b : bytes) {
        append_code_point(out, a.symbol[static_cast<unsigned char>(b)]);
    }
    return out;
}

std::optional<std::string> symbols_to_bytes(std::string_view symbols) {
    if (!is_valid_utf8(symbols)) {
        return std::nullopt;
    }
    const Alphabet& a = alphabet();
    std::string out;
    out.reserve(symbols.size());
    std::size_t i = 0;
    while (i < symbols.size()) {
        const auto lead = static_cast<unsigned char>(symbols[i]);
        char32_t c;
        if (lead < 0x80) {
            c = lead;
            i += 1;
        } else if (lead < 0xE0) {
            c = ((lead & 0x1Fu) << 6) | (static_cast<unsigned char>(symbols[i + 1]) & 0x3Fu);
            i += 2;
        } else {
            return std::nullopt;  // three- and four-byte characters are never symbols
        }
        if (c >= a.byte.size() || a.byte[c] < 0) {
            return std::nullopt;
        }
        out += static_cast<char>(a.byte[c]);
    }
    return out;
}

}  // namespace dsserve::tokenizer
