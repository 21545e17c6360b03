// Python str semantics over UTF-8 bytes: Jinja templates index, slice and measure strings in code
// points and strip Unicode whitespace, as CPython does.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dsserve::chat::jinja {

// Byte offset of each code point, plus the total size at the end (size = code points + 1).
// Bytes that are not valid UTF-8 count as one code point each.
std::vector<size_t> code_point_offsets(std::string_view text);
size_t code_point_count(std::string_view text);

// str.strip / lstrip / rstrip; `chars` nullopt strips Unicode whitespace.
std::string py_strip(std::string_view text, const std::optional<std::string>& chars, bool left,
                     bool right);
// str.split(sep, maxsplit) and str.rsplit; sep nullopt splits on whitespace runs.
std::vector<std::string> py_split(std::string_view text, const std::optional<std::string>& sep,
                                  long maxsplit, bool from_right);
std::string py_replace(std::string_view text, std::string_view old, std::string_view replacement,
                       long count);
// ASCII-only case mapping (non-ASCII letters pass through unchanged).
std::string ascii_upper(std::string_view text);
std::string ascii_lower(std::string_view text);
std::string py_capitalize(std::string_view text);
std::string py_title(std::string_view text);
// repr() of a str: quotes and escapes as CPython writes them.
std::string py_str_repr(std::string_view text);

}  // namespace dsserve::chat::jinja
