// JSON text exactly as Python's json.dumps writes it. DeepSeek's reference encoder and Hugging Face
// chat templates (transformers' `tojson`) both call json.dumps, so prompt bytes depend on its
// choices: ", " and ": " separators, floats written as Python's repr, non-ASCII kept when
// ensure_ascii is false, and Python's own set of escapes. The reference output parsers write tool
// arguments with json.dumps too, so the parsers' streaming normalizer builds on the same pieces.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/json.h"

namespace dsserve {

struct PyJsonOptions {
    bool ensure_ascii = false;
    // Python's indent: nullopt writes one line; a value writes one member per line, each level
    // indented by this string (json.dumps(indent=2) is "  ").
    std::optional<std::string> indent;
    // Python's separators; defaults follow json.dumps: (", ", ": ") on one line, (",", ": ") with
    // an indent.
    std::optional<std::string> item_separator;
    std::optional<std::string> key_separator;
    bool sort_keys = false;
};

// json.dumps(value, ensure_ascii=..., indent=..., separators=..., sort_keys=...).
std::string py_json_dumps(const Json& value, const PyJsonOptions& options = {});

// Python's repr(float): the shortest text that reads back to the same double, in fixed notation
// for exponents in [-4, 16) ("100.0", "0.0001") and scientific otherwise ("1e+16", "1e-05").
// NaN and infinities come out as json.dumps writes them: "NaN", "Infinity", "-Infinity".
std::string py_float_repr(double value);

// Appends `text` as a JSON string literal (with quotes) the way json.dumps escapes it.
void py_json_append_string(std::string& out, std::string_view text, bool ensure_ascii);

// The contents of that literal, without quotes: \" \\ \n \r \t \b \f, other bytes below 0x20
// as \u00XX; with ensure_ascii every other non-ASCII character as \uXXXX (a surrogate pair above
// U+FFFF). Bytes that are not UTF-8 are copied through, as is all non-ASCII text otherwise.
void py_json_append_escaped(std::string& out, std::string_view text, bool ensure_ascii);

// One UTF-16 code unit as json.dumps escapes it: "\u" and four lowercase hex digits.
void py_json_append_u_escape(std::string& out, unsigned code_unit);

}  // namespace dsserve
