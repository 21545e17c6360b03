#include "parsers/text.h"

#include <algorithm>
#include <string_view>

#include "core/utf8.h"

namespace dsserve::parsers {

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

size_t leading_space_bytes(std::string_view text) {
    size_t pos = 0;
    while (pos < text.size()) {
        size_t next = pos;
        bool ok = false;
        char32_t cp = utf8_next(text, next, &ok);
        if (!ok || !is_python_space(cp)) {
            break;
        }
        pos = next;
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
        // Whole only when the one sequence spans exactly these bytes.
        size_t next = start;
        bool ok = false;
        char32_t cp = utf8_next(text.substr(0, end), next, &ok);
        if (!ok || next != end || !is_python_space(cp)) {
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
        size_t len = utf8_length_from_lead(c);
        return (len > back) ? n - back : n;
    }
    return n;
}

}  // namespace dsserve::parsers
