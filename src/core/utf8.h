// UTF-8 code points for the text layers (chat templates, output parsers), and Python's
// str.isspace(). Prompt and output text must pass through byte for byte whatever a client or the
// model wrote, so nothing here rejects input: a byte that does not start a well-formed sequence is
// stepped over alone and reported, and the caller decides whether to copy it through.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace dsserve {

// Bytes in the sequence that `lead` starts, from its high bits alone: 1 to 4, or 0 for a
// continuation byte or a byte no sequence starts with (0xF8..0xFF).
std::size_t utf8_length_from_lead(unsigned char lead);

// Decodes the code point at text[pos] and advances pos past it. A sequence that is cut short, has
// a byte that is not a continuation byte, or starts with an invalid lead is not decoded: pos moves
// one byte, the byte's own value comes back, and `ok` (when given) is false. Overlong forms and
// surrogates are decoded as written.
char32_t utf8_next(std::string_view text, std::size_t& pos, bool* ok = nullptr);

// Appends `cp` encoded as UTF-8 (1 to 4 bytes; no check that cp is a scalar value).
void utf8_append(std::string& out, char32_t cp);

// Python's str.isspace() for one code point: ASCII whitespace, U+001C..U+001F, U+0085, U+00A0,
// U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000. Reference encoders and parsers
// strip and split with it, which removes more than ASCII whitespace.
bool is_python_space(char32_t cp);

}  // namespace dsserve
