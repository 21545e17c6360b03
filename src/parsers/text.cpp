#include "parsers/text.h"

#include <algorithm>
#include <string_view>

namespace dsserve::parsers {
namespace {

// Decodes one UTF-8 sequence of exactly `len` bytes; returns U+FFFFFFFF when it is malformed.
constexpr char32_t kBad = 0xFFFFFFFF;

size_t sequence_length(unsigned char lead) {
    if (lead < 0x80) {
        return 1;
    }
    if ((lead & 0xE0) == 0xC0) {
        return 2;
    }
    if ((lead & 0xF0) == 0xE0) {
        return 3;
    }
    if ((lead & 0xF8) == 0xF0) {
        return 4;
    }
    return 0;  // continuation byte or invalid lead
}

char32_t decode(std::string_view bytes) {
    auto lead = static_cast<unsigned char>(bytes[0]);
    size_t len = sequence_length(lead);
    if (len == 0 || len != bytes.size()) {
        return kBad;
    }
    if (len == 1) {
        return lead;
    }
    char32_t cp = lead & (0x7F >> len);
    for (size_t i = 1; i < len; ++i) {
        auto c = static_cast<unsigned char>(bytes[i]);
        if ((c & 0xC0) != 0x80) {
            return kBad;
        }
        cp = (cp << 6) | (c & 0x3F);
    }
    return cp;
}

}  // namespace

size_t partial_marker_suffix(std::string_view text, std::span<const std::string_view> markers) {
    size_t best = 0;
    for (std::string_view marker : markers) {
        size_t max_len = std::min(text.size(), marker.size() - 1);
        for (size_t len = max_len; len > best; --len) {
            if (text.substr(text.size() - len) == marker.substr(0, len)) {
                best = len;
                break;
            }
        }
    }
    return best;
}

size_t find_first_marker(std::string_view text, size_t from,
                         std::span<const std::string_view> markers, size_t* which) {
    size_t best = std::string_view::npos;
    size_t index = 0;
    for (std::string_view marker : markers) {
        // Only an occurrence starting before the best so far matters: search no further, so a
        // marker that is absent does not cost a scan of the whole rest of the text.
        std::string_view window = text;
        if (best != std::string_view::npos) {
            window = text.substr(0, std::min(text.size(), best + marker.size() - 1));
        }
        size_t pos = window.find(marker, from);
        if (pos < best) {
            best = pos;
            if (which != nullptr) {
                *which = index;
            }
        }
        ++index;
    }
    return best;
}

bool is_python_space(char32_t cp) {
    if (cp <= 0x20) {
        return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20);
    }
    switch (cp) {
        case 0x85:
        case 0xA0:
        case 0x1680:
        case 0x2028:
        case 0x2029:
        case 0x202F:
        case 0x205F:
        case 0x3000:
            return true;
        default:
            return cp >= 0x2000 && cp <= 0x200A;
    }
}

size_t leading_space_bytes(std::string_view text) {
    size_t pos = 0;
    while (pos < text.size()) {
        size_t len = sequence_length(static_cast<unsigned char>(text[pos]));
        if (len == 0 || pos + len > text.size()) {
            break;
        }
        char32_t cp = decode(text.substr(pos, len));
        if (cp == kBad || !is_python_space(cp)) {
            break;
        }
        pos += len;
    }
    return pos;
}

size_t trailing_space_bytes(std::string_view text) {
    size_t end = text.size();
    while (end > 0) {
        // Back up over at most three continuation bytes to the lead byte of the last character.
        size_t start = end - 1;
        while (start > 0 && end - start < 4 &&
               (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) {
            --start;
        }
        char32_t cp = decode(text.substr(start, end - start));
        if (cp == kBad || !is_python_space(cp)) {
            break;
        }
        end = start;
    }
    return text.size() - end;
}

std::string_view python_strip(std::string_view text) {
    text.remove_prefix(leading_space_bytes(text));
    text.remove_suffix(trailing_space_bytes(text));
    return text;
}

size_t utf8_complete_prefix(std::string_view text) {
    // Only the last (up to) three bytes can start an unfinished sequence.
    size_t n = text.size();
    for (size_t back = 1; back <= 3 && back <= n; ++back) {
        auto c = static_cast<unsigned char>(text[n - back]);
        if ((c & 0xC0) == 0x80) {
            continue;  // continuation byte: keep looking for the lead
        }
        size_t len = sequence_length(c);
        return (len > back) ? n - back : n;
    }
    return n;
}

}  // namespace dsserve::parsers
