#include "chat/jinja/pystring.h"

#include <cstdio>

#include "core/utf8.h"

namespace dsserve::chat::jinja {

std::vector<size_t> code_point_offsets(std::string_view text) {
    std::vector<size_t> offsets;
    offsets.reserve(text.size() + 1);
    size_t i = 0;
    while (i < text.size()) {
        offsets.push_back(i);
        utf8_next(text, i);
    }
    offsets.push_back(text.size());
    return offsets;
}

size_t code_point_count(std::string_view text) {
    size_t count = 0;
    size_t i = 0;
    while (i < text.size()) {
        utf8_next(text, i);
        ++count;
    }
    return count;
}

namespace {

bool in_chars(char32_t cp, const std::optional<std::string>& chars) {
    if (!chars) {
        return is_python_space(cp);
    }
    size_t i = 0;
    while (i < chars->size()) {
        if (utf8_next(*chars, i) == cp) {
            return true;
        }
    }
    return false;
}

}  // namespace

std::string py_strip(std::string_view text, const std::optional<std::string>& chars, bool left,
                     bool right) {
    const auto offsets = code_point_offsets(text);
    size_t begin = 0;
    size_t end = offsets.size() - 1;
    const auto cp_at = [&](size_t k) {
        size_t pos = offsets[k];
        return utf8_next(text, pos);
    };
    if (left) {
        while (begin < end && in_chars(cp_at(begin), chars)) {
            ++begin;
        }
    }
    if (right) {
        while (end > begin && in_chars(cp_at(end - 1), chars)) {
            --end;
        }
    }
    return std::string(text.substr(offsets[begin], offsets[end] - offsets[begin]));
}

std::vector<std::string> py_split(std::string_view text, const std::optional<std::string>& sep,
                                  long maxsplit, bool from_right) {
    std::vector<std::string> parts;
    if (sep) {
        if (!from_right) {
            size_t start = 0;
            while (maxsplit < 0 || static_cast<long>(parts.size()) < maxsplit) {
                const size_t hit = text.find(*sep, start);
                if (hit == std::string_view::npos) {
                    break;
                }
                parts.emplace_back(text.substr(start, hit - start));
                start = hit + sep->size();
            }
            parts.emplace_back(text.substr(start));
            return parts;
        }
        std::vector<std::string> reversed;
        size_t end = text.size();
        while (maxsplit < 0 || static_cast<long>(reversed.size()) < maxsplit) {
            if (end < sep->size()) {
                break;
            }
            const size_t hit = text.rfind(*sep, end - sep->size());
            if (hit == std::string_view::npos) {
                break;
            }
            reversed.emplace_back(text.substr(hit + sep->size(), end - hit - sep->size()));
            end = hit;
        }
        parts.emplace_back(text.substr(0, end));
        parts.insert(parts.end(), reversed.rbegin(), reversed.rend());
        return parts;
    }
    // Whitespace split: runs of whitespace separate, leading/trailing whitespace ignored.
    const auto offsets = code_point_offsets(text);
    std::vector<std::pair<size_t, size_t>> words;  // byte ranges
    size_t k = 0;
    const size_t n = offsets.size() - 1;
    const auto space_at = [&](size_t idx) {
        size_t pos = offsets[idx];
        return is_python_space(utf8_next(text, pos));
    };
    if (!from_right) {
        while (k < n) {
            while (k < n && space_at(k)) {
                ++k;
            }
            if (k == n) {
                break;
            }
            if (maxsplit >= 0 && static_cast<long>(words.size()) == maxsplit) {
                // The rest, with trailing whitespace stripped.
                size_t end = n;
                while (end > k && space_at(end - 1)) {
                    --end;
                }
                words.emplace_back(offsets[k], offsets[end]);
                break;
            }
            const size_t start = k;
            while (k < n && !space_at(k)) {
                ++k;
            }
            words.emplace_back(offsets[start], offsets[k]);
        }
        for (const auto& [b, e] : words) {
            parts.emplace_back(text.substr(b, e - b));
        }
        return parts;
    }
    size_t end = n;
    while (end > 0) {
        while (end > 0 && space_at(end - 1)) {
            --end;
        }
        if (end == 0) {
            break;
        }
        if (maxsplit >= 0 && static_cast<long>(words.size()) == maxsplit) {
            size_t start = 0;
            while (start < end && space_at(start)) {
                ++start;
            }
            words.emplace_back(offsets[start], offsets[end]);
            break;
        }
        const size_t stop = end;
        while (end > 0 && !space_at(end - 1)) {
            --end;
        }
        words.emplace_back(offsets[end], offsets[stop]);
    }
    for (auto it = words.rbegin(); it != words.rend(); ++it) {
        parts.emplace_back(text.substr(it->first, it->second - it->first));
    }
    return parts;
}

std::string py_replace(std::string_view text, std::string_view old, std::string_view replacement,
                       long count) {
    std::string out;
    if (old.empty()) {
        // Python inserts the replacement between code points (and at both ends).
        const auto offsets = code_point_offsets(text);
        long done = 0;
        for (size_t k = 0; k + 1 < offsets.size(); ++k) {
            if (count < 0 || done < count) {
                out += replacement;
                ++done;
            }
            out += text.substr(offsets[k], offsets[k + 1] - offsets[k]);
        }
        if (count < 0 || done < count) {
            out += replacement;
        }
        return out;
    }
    size_t start = 0;
    long done = 0;
    while (count < 0 || done < count) {
        const size_t hit = text.find(old, start);
        if (hit == std::string_view::npos) {
            break;
        }
        out += text.substr(start, hit - start);
        out += replacement;
        start = hit + old.size();
        ++done;
    }
    out += text.substr(start);
    return out;
}

std::string ascii_upper(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        if (c >= 'a' && c <= 'z') {
            c = static_cast<char>(c - 'a' + 'A');
        }
    }
    return out;
}

std::string ascii_lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return out;
}

std::string py_capitalize(std::string_view text) {
    std::string out = ascii_lower(text);
    if (!out.empty() && out[0] >= 'a' && out[0] <= 'z') {
        out[0] = static_cast<char>(out[0] - 'a' + 'A');
    }
    return out;
}

std::string py_title(std::string_view text) {
    std::string out(text);
    bool previous_cased = false;
    for (char& c : out) {
        const bool lower = c >= 'a' && c <= 'z';
        const bool upper = c >= 'A' && c <= 'Z';
        if (lower && !previous_cased) {
            c = static_cast<char>(c - 'a' + 'A');
        } else if (upper && previous_cased) {
            c = static_cast<char>(c - 'A' + 'a');
        }
        previous_cased = lower || upper || (static_cast<unsigned char>(c) >= 0x80);
    }
    return out;
}

std::string py_str_repr(std::string_view text) {
    const bool has_single = text.find('\'') != std::string_view::npos;
    const bool has_double = text.find('"') != std::string_view::npos;
    const char quote = has_single && !has_double ? '"' : '\'';
    std::string out(1, quote);
    size_t i = 0;
    while (i < text.size()) {
        const size_t start = i;
        const char32_t cp = utf8_next(text, i);
        if (cp == static_cast<char32_t>(quote) || cp == '\\') {
            out += '\\';
            out += static_cast<char>(cp);
        } else if (cp == '\n') {
            out += "\\n";
        } else if (cp == '\r') {
            out += "\\r";
        } else if (cp == '\t') {
            out += "\\t";
        } else if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0)) {
            char buf[16];
            std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned>(cp) & 0xFFu);
            out += buf;
        } else {
            out += text.substr(start, i - start);
        }
    }
    out += quote;
    return out;
}

}  // namespace dsserve::chat::jinja
