#include "core/utf8.h"

namespace dsserve {

std::size_t utf8_length_from_lead(unsigned char lead) {
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
    return 0;
}

char32_t utf8_next(std::string_view text, std::size_t& pos, bool* ok) {
    const auto lead = static_cast<unsigned char>(text[pos]);
    const std::size_t len = utf8_length_from_lead(lead);
    const auto reject = [&] {
        ++pos;
        if (ok != nullptr) {
            *ok = false;
        }
        return static_cast<char32_t>(lead);
    };
    if (len == 0 || len > text.size() - pos) {
        return reject();
    }
    // The lead's payload bits: all 7 of an ASCII byte, then 5, 4 or 3.
    char32_t cp = lead & (len == 1 ? 0x7Fu : 0x7Fu >> len);
    for (std::size_t k = 1; k < len; ++k) {
        const auto b = static_cast<unsigned char>(text[pos + k]);
        if ((b & 0xC0) != 0x80) {
            return reject();
        }
        cp = (cp << 6) | (b & 0x3Fu);
    }
    pos += len;
    if (ok != nullptr) {
        *ok = true;
    }
    return cp;
}

void utf8_append(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
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

}  // namespace dsserve
