#include "tokenizer/unicode_classes.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <cstdint>
#include <ios>
#include <span>

#include "core/error.h"
#include "core/utf8.h"
#include "tokenizer/utf8.h"

namespace dsserve::tokenizer {
namespace {

struct CodePointRange {
    std::uint32_t first;
    std::uint32_t last;
};

#include "tokenizer/unicode_ranges.inc"

void append_range(std::string& out, std::uint32_t first, std::uint32_t last) {
    out += str_cat("\\x{", std::hex, first, "}");
    if (last != first) {
        out += str_cat("-\\x{", std::hex, last, "}");
    }
}

std::string class_body(std::span<const CodePointRange> ranges) {
    std::string out;
    for (const auto& r : ranges) {
        append_range(out, r.first, r.last);
    }
    return out;
}

// Matches one code point against a fixed class; used only for single_word tokens.
class CharClass {
public:
    explicit CharClass(const char* pattern) {
        int error = 0;
        PCRE2_SIZE offset = 0;
        code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern), PCRE2_ZERO_TERMINATED,
                              PCRE2_UTF | PCRE2_UCP | PCRE2_ANCHORED, &error, &offset, nullptr);
        DS_ASSERT(code_ != nullptr, "bad built-in pattern ", pattern, " error ", error);
    }
    ~CharClass() { pcre2_code_free(code_); }
    CharClass(const CharClass&) = delete;
    CharClass& operator=(const CharClass&) = delete;

    bool contains(char32_t c) const {
        std::string utf8;
        utf8_append(utf8, c);
        pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
        DS_ASSERT(data != nullptr, "out of memory");
        const int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(utf8.data()), utf8.size(), 0,
                                   0, data, nullptr);
        pcre2_match_data_free(data);
        return rc > 0;
    }

private:
    pcre2_code* code_ = nullptr;
};

}  // namespace

std::string white_space_class_body() {
    return class_body(kWhiteSpace);
}

std::string non_white_space_class_body() {
    std::string out;
    std::uint32_t next = 0;
    for (const auto& r : kWhiteSpace) {
        if (r.first > next) {
            append_range(out, next, r.first - 1);
        }
        next = r.last + 1;
    }
    append_range(out, next, 0x10FFFF);
    return out;
}

std::string property_class_body(std::string_view name) {
    std::string out = str_cat("\\p{", name, "}");
    if (name == "L") {
        out += class_body(kExtraL);
    } else if (name == "N") {
        out += class_body(kExtraN);
    } else if (name == "P") {
        out += class_body(kExtraP);
    } else if (name == "S") {
        out += class_body(kExtraS);
    } else if (name == "M") {
        out += class_body(kExtraM);
    } else {
        fail("pre-tokenizer regex: unsupported Unicode property \\p{", name,
             "} (supported: L, N, P, S, M)");
    }
    return out;
}

bool is_white_space(char32_t c) {
    for (const auto& r : kWhiteSpace) {
        if (c >= r.first && c <= r.last) {
            return true;
        }
    }
    return false;
}

bool is_word_char(char32_t c) {
    static const CharClass word("[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]");
    return word.contains(c);
}

char32_t decode_at(std::string_view text, std::size_t pos, std::size_t& length) {
    const auto lead = static_cast<unsigned char>(text[pos]);
    length = utf8_sequence_length(lead);
    if (length == 1 || pos + length > text.size()) {
        length = 1;
        return lead;
    }
    char32_t c = lead & (0x7F >> length);
    for (std::size_t k = 1; k < length; ++k) {
        c = (c << 6) | (static_cast<unsigned char>(text[pos + k]) & 0x3F);
    }
    return c;
}

char32_t decode_before(std::string_view text, std::size_t pos) {
    std::size_t start = pos - 1;
    while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) {
        --start;
    }
    std::size_t length = 0;
    return decode_at(text, start, length);
}

}  // namespace dsserve::tokenizer
