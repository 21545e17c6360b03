// UTF-8 checks and the lossy conversion Rust's String::from_utf8_lossy performs, which is what HF
// `tokenizers` applies to decoded bytes: every maximal ill-formed subpart (Unicode 15, §3.9,
// "U+FFFD Substitution of Maximal Subparts") becomes one U+FFFD.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace dsserve::tokenizer {

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

bool is_valid_utf8(std::string_view bytes);

// Appends `bytes` to `out` as valid UTF-8, each maximal ill-formed subpart replaced by U+FFFD.
// With `at_end` false, a trailing sequence that is incomplete but could still become valid is
// left unconsumed, so that a later call with more bytes decides it. Returns the number of bytes
// consumed (always bytes.size() when at_end).
std::size_t append_utf8_lossy(std::string_view bytes, bool at_end, std::string& out);

inline std::string to_utf8_lossy(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size());
    append_utf8_lossy(bytes, true, out);
    return out;
}

// Length in bytes of the UTF-8 sequence starting with `lead`, assuming valid input (1 for a
// stray continuation byte, so that callers stepping through text always advance).
inline std::size_t utf8_sequence_length(unsigned char lead) {
    if (lead < 0xC0) {
        return 1;
    }
    if (lead < 0xE0) {
        return 2;
    }
    if (lead < 0xF0) {
        return 3;
    }
    return 4;
}

}  // namespace dsserve::tokenizer
