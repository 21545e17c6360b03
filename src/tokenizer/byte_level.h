// The byte-level alphabet of GPT-2 style BPE (as HF's ByteLevel pre-tokenizer and decoder use
// it): each of the 256 byte values is shown as one printable Unicode character, so that vocab
// entries and merges are text. Printable Latin-1 bytes stand for themselves; the other 68 bytes
// (controls, space, DEL, NBSP, soft hyphen) map in order to U+0100 onwards, so ' ' is 'Ġ'.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace dsserve::tokenizer {

// The UTF-8 of the symbol that stands for each byte of `bytes`, concatenated.
std::string bytes_to_symbols(std::string_view bytes);

// The bytes a string of symbols stands for, or nullopt if one of its characters is not a
// byte-level symbol (or the string is not valid UTF-8).
std::optional<std::string> symbols_to_bytes(std::string_view symbols);

}  // namespace dsserve::tokenizer
