#include "tokenizer/utf8.h"

#include <cstdint>
#include <cstring>

namespace dsserve::tokenizer {
namespace {

// Well-formed UTF-8 byte sequences (Unicode 15, table 3-7): the lead byte fixes the length and
// the range allowed for the second byte; later bytes are always 80..BF. Returns the length, or
// 0 for a byte that cannot start a sequence.
std::size_t sequence_bounds(unsigned char lead, unsigned char& lo, unsigned char& hi) {
    lo = 0x80;
    hi = 0xBF;
    if (lead < 0x80) {
        return 1;
    }
    if (lead < 0xC2) {
        return 0;
    }
    if (lead < 0xE0) {
        return 2;
    }
    if (lead < 0xF0) {
        if (lead == 0xE0) {
            lo = 0xA0;  // no overlong forms
        } else if (lead == 0xED) {
            hi = 0x9F;  // no surrogates
        }
        return 3;
    }
    if (lead < 0xF5) {
        if (lead == 0xF0) {
            lo = 0x90;
        } else if (lead == 0xF4) {
            hi = 0x8F;  // nothing above U+10FFFF
        }
        return 4;
    }
    return 0;
}

// Number of leading ASCII bytes, eight at a time.
std::size_t ascii_prefix(const unsigned char* p, std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        std::uint64_t word;
        std::memcpy(&word, p + i, 8);
        if (word & 0x8080808080808080ULL) {
            break;
        }
    }
    while (i < n && p[i] < 0x80) {
        ++i;
    }
    return i;
}

}  // namespace

bool is_valid_utf8(std::string_view bytes) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const std::size_t n = bytes.size();
    std::size_t i = 0;
    while (i < n) {
        i += ascii_prefix(p + i, n - i);
        if (i == n) {
            break;
        }
        unsigned char lo, hi;
        const std::size_t len = sequence_bounds(p[i], lo, hi);
        if (len == 0 || i + len > n || p[i + 1] < lo || p[i + 1] > hi) {
            return false;
        }
        for (std::size_t k = 2; k < len; ++k) {
            if (p[i + k] < 0x80 || p[i + k] > 0xBF) {
                return false;
            }
        }
        i += len;
    }
    return true;
}

std::size_t append_utf8_lossy(std::string_view bytes, bool at_end, std::string& out) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const std::size_t n = bytes.size();
    std::size_t i = 0;
    while (i < n) {
        const std::size_t ascii = ascii_prefix(p + i, n - i);
        out.append(bytes.data() + i, ascii);
        i += ascii;
        if (i == n) {
            break;
        }
        unsigned char lo, hi;
        const std::size_t len = sequence_bounds(p[i], lo, hi);
        if (len == 0) {
            out.append(kReplacementChar);
            ++i;
            continue;
        }
        // Count the bytes that still fit a well-formed sequence; the first misfit ends the
        // maximal subpart.
        std::size_t good = 1;
        while (good < len && i + good < n) {
            const unsigned char c = p[i + good];
            const bool fits = good == 1 ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xBF);
            if (!fits) {
                break;
            }
            ++good;
        }
        if (good == len) {
            out.append(bytes.data() + i, len);
        } else if (i + good == n && !at_end) {
            return i;  // incomplete, may still be completed by later bytes
        } else {
            out.append(kReplacementChar);
        }
        i += good;
    }
    return n;
}

}  // namespace dsserve::tokenizer
