#include "chat/jinja/lexer.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "chat/jinja/pystring.h"
#include "core/error.h"
#include "core/utf8.h"

namespace dsserve::chat::jinja {
namespace {

enum class Tag { kVariable, kBlock, kComment, kRaw };

// Python's re `\s` (and str.isspace) at a byte position; returns the byte length matched or 0.
size_t space_len(std::string_view s, size_t pos) {
    if (pos >= s.size()) {
        return 0;
    }
    size_t next = pos;
    const char32_t cp = utf8_next(s, next);
    return is_python_space(cp) ? next - pos : 0;
}

size_t skip_spaces(std::string_view s, size_t pos) {
    while (size_t n = space_len(s, pos)) {
        pos += n;
    }
    return pos;
}

bool all_spaces(std::string_view s) {
    return !s.empty() && skip_spaces(s, 0) == s.size();
}

std::string rstrip_spaces(std::string_view s) {
    return py_strip(s, std::nullopt, /*left=*/false, /*right=*/true);
}

bool starts_with(std::string_view s, size_t pos, std::string_view prefix) {
    return s.substr(pos, prefix.size()) == prefix;
}

bool is_name_start(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}
bool is_name_char(unsigned char c) {
    return is_name_start(c) || (c >= '0' && c <= '9');
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// Decodes a Python string literal body the way Jinja does (unicode-escape of the raw text).
std::string unescape(std::string_view body) {
    std::string out;
    size_t i = 0;
    const auto hex_value = [&](size_t start, size_t count, char32_t& cp) {
        if (start + count > body.size()) {
            return false;
        }
        cp = 0;
        for (size_t k = 0; k < count; ++k) {
            const char c = body[start + k];
            int v = 0;
            if (c >= '0' && c <= '9') {
                v = c - '0';
            } else if (c >= 'a' && c <= 'f') {
                v = c - 'a' + 10;
            } else if (c >= 'A' && c <= 'F') {
                v = c - 'A' + 10;
            } else {
                return false;
            }
            cp = cp * 16 + static_cast<char32_t>(v);
        }
        return true;
    };
    while (i < body.size()) {
        const char c = body[i];
        if (c != '\\' || i + 1 >= body.size()) {
            out += c;
            ++i;
            continue;
        }
        const char e = body[i + 1];
        i += 2;
        char32_t cp = 0;
        switch (e) {
            case '\n':
                break;
            case '\\':
                out += '\\';
                break;
            case '\'':
                out += '\'';
                break;
            case '"':
                out += '"';
                break;
            case 'a':
                out += '\a';
                break;
            case 'b':
                out += '\b';
                break;
            case 'f':
                out += '\f';
                break;
            case 'n':
                out += '\n';
                break;
            case 'r':
                out += '\r';
                break;
            case 't':
                out += '\t';
                break;
            case 'v':
                out += '\v';
                break;
            case 'x':
            case 'u':
            case 'U': {
                const size_t count = e == 'x' ? 2 : (e == 'u' ? 4 : 8);
                DS_CHECK(hex_value(i, count, cp) && cp <= 0x10FFFF, "invalid \\", e,
                         " escape in string literal");
                utf8_append(out, cp);
                i += count;
                break;
            }
            default:
                if (e >= '0' && e <= '7') {
                    cp = static_cast<char32_t>(e - '0');
                    for (int k = 0; k < 2 && i < body.size() && body[i] >= '0' && body[i] <= '7';
                         ++k, ++i) {
                        cp = cp * 8 + static_cast<char32_t>(body[i] - '0');
                    }
                    utf8_append(out, cp);
                } else {
                    // Unknown escapes stay as written, backslash included.
                    out += '\\';
                    out += e;
                }
        }
    }
    return out;
}

class Lexer {
public:
    explicit Lexer(std::string source) : src_(std::move(source)) {
        line_starts_.push_back(0);
        for (size_t i = 0; i < src_.size(); ++i) {
            if (src_[i] == '\n') {
                line_starts_.push_back(i + 1);
            }
        }
    }

    std::vector<Token> run() {
        size_t pos = 0;
        bool line_starting = true;
        while (pos < src_.size()) {
            size_t tag_pos = 0;
            Tag tag = Tag::kVariable;
            char sign = 0;
            size_t after = 0;  // position after the tag opener
            if (!find_tag(pos, tag_pos, tag, sign, after)) {
                emit_data(pos, src_.substr(pos));
                break;
            }
            std::string text = src_.substr(pos, tag_pos - pos);
            text = strip_before_tag(text, sign, tag == Tag::kVariable, line_starting);
            emit_data(pos, text);
            switch (tag) {
                case Tag::kComment:
                    pos = lex_comment(after, line_starting);
                    break;
                case Tag::kRaw:
                    pos = lex_raw(after, line_starting);
                    break;
                case Tag::kVariable:
                case Tag::kBlock:
                    pos = lex_tag(tag_pos, after, tag, line_starting);
                    break;
            }
        }
        Token end;
        end.type = TokenType::kEnd;
        set_position(end, src_.size());
        tokens_.push_back(end);
        return std::move(tokens_);
    }

private:
    [[noreturn]] void error_at(size_t pos, const std::string& message) const {
        int line = 0;
        int column = 0;
        position(pos, line, column);
        fail("line ", line, " column ", column, ": ", message);
    }

    void position(size_t pos, int& line, int& column) const {
        const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), pos);
        const auto index = static_cast<size_t>(it - line_starts_.begin()) - 1;
        line = static_cast<int>(index) + 1;
        column = static_cast<int>(pos - line_starts_[index]) + 1;
    }

    void set_position(Token& token, size_t pos) const { position(pos, token.line, token.column); }

    void emit(TokenType type, size_t pos, std::string text = {}) {
        Token token;
        token.type = type;
        token.text = std::move(text);
        set_position(token, pos);
        tokens_.push_back(std::move(token));
    }

    void emit_data(size_t pos, std::string text) {
        if (!text.empty()) {
            emit(TokenType::kData, pos, std::move(text));
        }
    }

    // The root rule: the earliest "{{", "{%" or "{#" (a "{% raw %}" opener is tried first at a
    // "{%"), each optionally followed by "-" or "+".
    bool find_tag(size_t pos, size_t& tag_pos, Tag& tag, char& sign, size_t& after) const {
        size_t i = pos;
        while ((i = src_.find('{', i)) != std::string::npos) {
            if (i + 1 >= src_.size()) {
                return false;
            }
            const char c = src_[i + 1];
            if (c == '{' || c == '%' || c == '#') {
                tag_pos = i;
                size_t j = i + 2;
                sign = 0;
                if (j < src_.size() && (src_[j] == '-' || src_[j] == '+')) {
                    sign = src_[j];
                    ++j;
                }
                tag = c == '{' ? Tag::kVariable : (c == '%' ? Tag::kBlock : Tag::kComment);
                after = j;
                if (tag == Tag::kBlock) {
                    size_t k = skip_spaces(src_, j);
                    if (starts_with(src_, k, "raw")) {
                        k = skip_spaces(src_, k + 3);
                        if (starts_with(src_, k, "-%}")) {
                            tag = Tag::kRaw;
                            after = skip_spaces(src_, k + 3);
                        } else if (starts_with(src_, k, "%}")) {
                            tag = Tag::kRaw;
                            after = k + 2;
                        }
                    }
                }
                return true;
            }
            ++i;
        }
        return false;
    }

    // OptionalLStrip: "-" strips all whitespace before the tag; otherwise, with lstrip_blocks,
    // spaces and tabs between a line start and a block or comment tag are dropped ("+" keeps
    // them). A line starts after a newline in the text or when the previous token ended in one.
    static std::string strip_before_tag(const std::string& text, char sign, bool is_variable,
                                        bool line_starting) {
        if (sign == '-') {
            return rstrip_spaces(text);
        }
        if (sign == '+' || is_variable) {
            return text;
        }
        const size_t newline = text.rfind('\n');
        const size_t l_pos = newline == std::string::npos ? 0 : newline + 1;
        if ((l_pos > 0 || line_starting) && all_spaces(std::string_view(text).substr(l_pos))) {
            return text.substr(0, l_pos);
        }
        return text;
    }

    // A comment ends at "+#}", "-#}" (eating following whitespace) or "#}" (eating one "\n",
    // trim_blocks).
    size_t lex_comment(size_t pos, bool& line_starting) {
        for (size_t i = pos; i < src_.size(); ++i) {
            size_t end = 0;
            if (starts_with(src_, i, "+#}")) {
                end = i + 3;
            } else if (starts_with(src_, i, "-#}")) {
                end = skip_spaces(src_, i + 3);
            } else if (starts_with(src_, i, "#}")) {
                end = i + 2;
                if (end < src_.size() && src_[end] == '\n') {
                    ++end;
                }
            } else {
                continue;
            }
            line_starting = src_[end - 1] == '\n';
            return end;
        }
        error_at(pos, "missing end of comment tag");
    }

    // {% raw %} ... {% endraw %}: the text in between is data, with the endraw tag's whitespace
    // control applied to it.
    size_t lex_raw(size_t pos, bool& line_starting) {
        // The raw opener itself may end in "\n" (after "-%}"), which starts a line.
        line_starting = pos > 0 && src_[pos - 1] == '\n';
        for (size_t i = pos; i < src_.size(); ++i) {
            if (!starts_with(src_, i, "{%")) {
                continue;
            }
            size_t j = i + 2;
            char sign = 0;
            if (j < src_.size() && (src_[j] == '-' || src_[j] == '+')) {
                sign = src_[j];
                ++j;
            }
            j = skip_spaces(src_, j);
            if (!starts_with(src_, j, "endraw")) {
                continue;
            }
            j = skip_spaces(src_, j + 6);
            size_t end = 0;
            if (starts_with(src_, j, "+%}")) {
                end = j + 3;
            } else if (starts_with(src_, j, "-%}")) {
                end = skip_spaces(src_, j + 3);
            } else if (starts_with(src_, j, "%}")) {
                end = j + 2;
                if (end < src_.size() && src_[end] == '\n') {
                    ++end;
                }
            } else {
                continue;
            }
            emit_data(pos, strip_before_tag(src_.substr(pos, i - pos), sign, false, line_starting));
            line_starting = src_[end - 1] == '\n';
            return end;
        }
        error_at(pos, "missing end of raw directive");
    }

    size_t lex_tag(size_t tag_pos, size_t pos, Tag tag, bool& line_starting) {
        const bool block = tag == Tag::kBlock;
        emit(block ? TokenType::kBlockBegin : TokenType::kVarBegin, tag_pos);
        std::vector<char> balance;
        while (true) {
            if (pos >= src_.size()) {
                error_at(tag_pos, block ? "unexpected end of template, expected '%}'"
                                        : "unexpected end of template, expected '}}'");
            }
            // The end delimiter is only recognized while brackets are balanced.
            if (balance.empty()) {
                size_t end = 0;
                if (block) {
                    if (starts_with(src_, pos, "+%}")) {
                        end = pos + 3;
                    } else if (starts_with(src_, pos, "-%}")) {
                        end = skip_spaces(src_, pos + 3);
                    } else if (starts_with(src_, pos, "%}")) {
                        end = pos + 2;
                        if (end < src_.size() && src_[end] == '\n') {
                            ++end;
                        }
                    }
                } else {
                    if (starts_with(src_, pos, "-}}")) {
                        end = skip_spaces(src_, pos + 3);
                    } else if (starts_with(src_, pos, "}}")) {
                        end = pos + 2;
                    }
                }
                if (end != 0) {
                    emit(block ? TokenType::kBlockEnd : TokenType::kVarEnd, pos);
                    line_starting = src_[end - 1] == '\n';
                    return end;
                }
            }
            if (const size_t n = space_len(src_, pos)) {
                pos += n;
                continue;
            }
            pos = lex_expression_token(pos, balance);
        }
    }

    size_t lex_number(size_t pos) {
        // Digits with single underscores between them: (\d+_)*\d+
        const auto digits = [&](size_t p) {
            size_t q = p;
            while (q < src_.size() && is_digit(src_[q])) {
                ++q;
                if (q + 1 < src_.size() && src_[q] == '_' && is_digit(src_[q + 1])) {
                    ++q;
                }
            }
            return q;
        };
        size_t end = digits(pos);
        bool is_float = false;
        // Jinja's float rule does not apply right after a "." (so `x.0.1` is two lookups).
        const bool after_dot = pos > 0 && src_[pos - 1] == '.';
        if (!after_dot) {
            size_t q = end;
            bool fraction = false;
            if (q + 1 < src_.size() && src_[q] == '.' && is_digit(src_[q + 1])) {
                q = digits(q + 1);
                fraction = true;
            }
            size_t e = q;
            if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
                size_t f = e + 1;
                if (f < src_.size() && (src_[f] == '+' || src_[f] == '-')) {
                    ++f;
                }
                if (f < src_.size() && is_digit(src_[f])) {
                    q = digits(f);
                    fraction = true;
                }
            }
            if (fraction) {
                end = q;
                is_float = true;
            }
        }
        std::string text;
        for (size_t i = pos; i < end; ++i) {
            if (src_[i] != '_') {
                text += src_[i];
            }
        }
        Token token;
        set_position(token, pos);
        token.text = text;
        if (is_float) {
            token.type = TokenType::kFloat;
            token.float_value = std::strtod(text.c_str(), nullptr);
        } else {
            token.type = TokenType::kInteger;
            errno = 0;
            const long long v = std::strtoll(text.c_str(), nullptr, 10);
            if (errno == ERANGE) {
                error_at(pos, "integer literal too large");
            }
            token.int_value = v;
        }
        tokens_.push_back(std::move(token));
        return end;
    }

    size_t lex_expression_token(size_t pos, std::vector<char>& balance) {
        const char c = src_[pos];
        if (is_digit(c)) {
            return lex_number(pos);
        }
        if (is_name_start(static_cast<unsigned char>(c))) {
            size_t end = pos;
            while (end < src_.size() && is_name_char(static_cast<unsigned char>(src_[end]))) {
                ++end;
            }
            emit(TokenType::kName, pos, src_.substr(pos, end - pos));
            return end;
        }
        if (c == '\'' || c == '"') {
            size_t i = pos + 1;
            while (i < src_.size() && src_[i] != c) {
                i += src_[i] == '\\' ? 2 : 1;
            }
            if (i >= src_.size()) {
                error_at(pos, "unexpected end of string literal");
            }
            emit(TokenType::kString, pos,
                 unescape(std::string_view(src_).substr(pos + 1, i - pos - 1)));
            return i + 1;
        }
        static constexpr std::string_view kTwoChar[] = {"//", "**", "==", "!=", ">=", "<="};
        for (const auto op : kTwoChar) {
            if (starts_with(src_, pos, op)) {
                emit(TokenType::kOperator, pos, std::string(op));
                return pos + 2;
            }
        }
        static constexpr std::string_view kOneChar = "+-/*%~[](){}<>=.:|,;";
        if (kOneChar.find(c) == std::string_view::npos) {
            error_at(pos, str_cat("unexpected char '", std::string(1, c), "'"));
        }
        if (c == '(' || c == '[' || c == '{') {
            balance.push_back(c == '(' ? ')' : (c == '[' ? ']' : '}'));
        } else if (c == ')' || c == ']' || c == '}') {
            if (balance.empty() || balance.back() != c) {
                error_at(pos, str_cat("unexpected '", std::string(1, c), "'"));
            }
            balance.pop_back();
        }
        emit(TokenType::kOperator, pos, std::string(1, c));
        return pos + 1;
    }

    std::string src_;
    std::vector<size_t> line_starts_;
    std::vector<Token> tokens_;
};

// Jinja normalizes "\r\n" and "\r" to "\n" and drops one trailing newline.
std::string normalize_source(std::string_view source) {
    std::string out;
    out.reserve(source.size());
    for (size_t i = 0; i < source.size(); ++i) {
        if (source[i] == '\r') {
            out += '\n';
            if (i + 1 < source.size() && source[i + 1] == '\n') {
                ++i;
            }
        } else {
            out += source[i];
        }
    }
    if (!out.empty() && out.back() == '\n') {
        out.pop_back();
    }
    return out;
}

}  // namespace

std::vector<Token> tokenize(std::string_view source) {
    return Lexer(normalize_source(source)).run();
}

}  // namespace dsserve::chat::jinja
