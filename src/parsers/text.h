// Small byte-string helpers shared by the incremental parsers: marker hold-back, Python-style
// whitespace stripping, and UTF-8 boundaries. All work on UTF-8 bytes without decoding the whole
// string; invalid bytes are treated as ordinary non-whitespace characters.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <span>
#include <string_view>

namespace dsserve::parsers {

// Length of the longest suffix of `text` that is a proper, non-empty prefix of one of `markers`.
// A streaming parser keeps those bytes back: the next chunk may complete the marker.
size_t partial_marker_suffix(std::string_view text, std::span<const std::string_view> markers);
inline size_t partial_marker_suffix(std::string_view text,
                                    std::initializer_list<std::string_view> markers) {
    return partial_marker_suffix(text, std::span(markers.begin(), markers.size()));
}

// Position of the first occurrence of any of `markers` at or after `from`, or npos; `which` gets
// the index of the marker found (the earliest; on a tie the first listed).
size_t find_first_marker(std::string_view text, size_t from,
                         std::span<const std::string_view> markers, size_t* which);
inline size_t find_first_marker(std::string_view text, size_t from,
                                std::initializer_list<std::string_view> markers, size_t* which) {
    return find_first_marker(text, from, std::span(markers.begin(), markers.size()), which);
}

// Byte length of the run of Python whitespace (core/utf8.h, is_python_space) at the start / end
// of `text`: the model's output is stripped with str.strip() in the reference parsers, which
// removes all of it, not just ASCII.
size_t leading_space_bytes(std::string_view text);
size_t trailing_space_bytes(std::string_view text);

// text.strip() in Python's sense.
std::string_view python_strip(std::string_view text);

// Length of the longest prefix of `text` that does not end inside an incomplete UTF-8 sequence:
// a streamed fragment is cut there so every fragment the server serializes is whole characters.
// Invalid bytes count as complete (they are passed through, never held forever).
size_t utf8_complete_prefix(std::string_view text);

}  // namespace dsserve::parsers
