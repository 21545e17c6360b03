#include "core/pyjson.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "core/error.h"
#include "core/utf8.h"

namespace dsserve {
namespace {

void dump(std::string& out, const Json& value, const PyJsonOptions& options,
          const std::string& item_sep, const std::string& key_sep, int depth) {
    DS_CHECK(depth < 512, "JSON value nested too deeply to serialize");
    const auto newline_indent = [&](int level) {
        out += '\n';
        for (int k = 0; k < level; ++k) {
            out += *options.indent;
        }
    };
    // What comes before the index-th element or member, and before the closing bracket.
    const auto before_item = [&](size_t index) {
        if (index > 0) {
            out += item_sep;
        }
        if (options.indent) {
            newline_indent(depth + 1);
        }
    };
    const auto close = [&](char bracket) {
        if (options.indent) {
            newline_indent(depth);
        }
        out += bracket;
    };
    switch (value.type()) {
        case Json::value_t::null:
            out += "null";
            return;
        case Json::value_t::boolean:
            out += value.get<bool>() ? "true" : "false";
            return;
        case Json::value_t::number_integer:
            out += std::to_string(value.get<std::int64_t>());
            return;
        case Json::value_t::number_unsigned:
            out += std::to_string(value.get<std::uint64_t>());
            return;
        case Json::value_t::number_float:
            out += py_float_repr(value.get<double>());
            return;
        case Json::value_t::string:
            py_json_append_string(out, value.get_ref<const std::string&>(), options.ensure_ascii);
            return;
        case Json::value_t::array: {
            if (value.empty()) {
                out += "[]";
                return;
            }
            out += '[';
            for (size_t k = 0; k < value.size(); ++k) {
                before_item(k);
                dump(out, value[k], options, item_sep, key_sep, depth + 1);
            }
            close(']');
            return;
        }
        case Json::value_t::object: {
            if (value.empty()) {
                out += "{}";
                return;
            }
            std::vector<Json::const_iterator> members;
            for (auto it = value.begin(); it != value.end(); ++it) {
                members.push_back(it);
            }
            if (options.sort_keys) {
                std::stable_sort(members.begin(), members.end(),
                                 [](const auto& a, const auto& b) { return a.key() < b.key(); });
            }
            out += '{';
            for (size_t k = 0; k < members.size(); ++k) {
                before_item(k);
                py_json_append_string(out, members[k].key(), options.ensure_ascii);
                out += key_sep;
                dump(out, members[k].value(), options, item_sep, key_sep, depth + 1);
            }
            close('}');
            return;
        }
        case Json::value_t::binary:
        case Json::value_t::discarded:
            fail("value is not JSON serializable");
    }
}

}  // namespace

void py_json_append_u_escape(std::string& out, unsigned code_unit) {
    static constexpr char kHex[] = "0123456789abcdef";
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) {
        out += kHex[(code_unit >> shift) & 0xF];
    }
}

void py_json_append_escaped(std::string& out, std::string_view text, bool ensure_ascii) {
    size_t i = 0;
    while (i < text.size()) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x80) {
            if (!ensure_ascii) {
                out += static_cast<char>(c);
                ++i;
                continue;
            }
            const size_t start = i;
            bool ok = true;
            const char32_t cp = utf8_next(text, i, &ok);
            if (!ok) {
                out.append(text.substr(start, i - start));
            } else if (cp >= 0x10000) {
                const char32_t v = cp - 0x10000;
                py_json_append_u_escape(out, 0xD800 + static_cast<unsigned>(v >> 10));
                py_json_append_u_escape(out, 0xDC00 + static_cast<unsigned>(v & 0x3FF));
            } else {
                py_json_append_u_escape(out, static_cast<unsigned>(cp));
            }
            continue;
        }
        ++i;
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            default:
                if (c < 0x20) {
                    py_json_append_u_escape(out, c);
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
}

void py_json_append_string(std::string& out, std::string_view text, bool ensure_ascii) {
    out += '"';
    py_json_append_escaped(out, text, ensure_ascii);
    out += '"';
}

std::string py_float_repr(double value) {
    if (std::isnan(value)) {
        return "NaN";
    }
    if (std::isinf(value)) {
        return value > 0 ? "Infinity" : "-Infinity";
    }
    // Shortest round-trip digits in scientific form, e.g. "1.2345e+17" or "-5e-324".
    char buf[64];
    const auto res = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
    DS_ASSERT(res.ec == std::errc(), "to_chars failed");
    std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));
    const bool negative = sci.front() == '-';
    if (negative) {
        sci.remove_prefix(1);
    }
    const size_t e_pos = sci.find('e');
    std::string digits;
    for (char c : sci.substr(0, e_pos)) {
        if (c != '.') {
            digits += c;
        }
    }
    const int exponent = std::atoi(std::string(sci.substr(e_pos + 1)).c_str());
    std::string out = negative ? "-" : "";
    if (exponent >= -4 && exponent < 16) {
        if (exponent < 0) {
            out += "0.";
            out.append(static_cast<size_t>(-exponent - 1), '0');
            out += digits;
        } else {
            const auto int_len = static_cast<size_t>(exponent + 1);
            if (digits.size() <= int_len) {
                out += digits;
                out.append(int_len - digits.size(), '0');
                out += ".0";
            } else {
                out += digits.substr(0, int_len);
                out += '.';
                out += digits.substr(int_len);
            }
        }
        return out;
    }
    out += digits.substr(0, 1);
    if (digits.size() > 1) {
        out += '.';
        out += digits.substr(1);
    }
    char exp_buf[16];
    std::snprintf(exp_buf, sizeof(exp_buf), "e%c%02d", exponent < 0 ? '-' : '+',
                  exponent < 0 ? -exponent : exponent);
    out += exp_buf;
    return out;
}

std::string py_json_dumps(const Json& value, const PyJsonOptions& options) {
    const std::string item_sep =
        options.item_separator.value_or(options.indent ? std::string(",") : std::string(", "));
    const std::string key_sep = options.key_separator.value_or(": ");
    std::string out;
    dump(out, value, options, item_sep, key_sep, 0);
    return out;
}

}  // namespace dsserve
