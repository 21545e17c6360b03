#include "parsers/python_json.h"

#include <cerrno>
#include <cstdlib>
#include <string>

#include "core/pyjson.h"
#include "core/utf8.h"

namespace dsserve::parsers {
namespace {

constexpr char32_t kFlushSurrogate = 0xFFFFFFFF;
constexpr std::string_view kLiterals[] = {"true", "false", "null", "NaN", "Infinity", "-Infinity"};

bool is_json_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_number_byte(char c) {
    return is_digit(c) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// Python's JSON number grammar: -?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?
bool valid_number(std::string_view s, bool* is_float) {
    size_t i = 0;
    size_t n = s.size();
    auto digits = [&] {
        size_t start = i;
        while (i < n && is_digit(s[i])) {
            ++i;
        }
        return i > start;
    };
    if (i < n && s[i] == '-') {
        ++i;
    }
    if (i < n && s[i] == '0') {
        ++i;
    } else if (!digits()) {
        return false;
    }
    *is_float = false;
    if (i < n && s[i] == '.') {
        ++i;
        if (!digits()) {
            return false;
        }
        *is_float = true;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        if (i < n && (s[i] == '+' || s[i] == '-')) {
            ++i;
        }
        if (!digits()) {
            return false;
        }
        *is_float = true;
    }
    return i == n;
}

}  // namespace

void JsonNormalizer::push(std::string_view text) {
    for (char c : text) {
        if (error_ || finished_) {
            return;
        }
        consume(c);
    }
}

void JsonNormalizer::write(std::string_view s) {
    if (mute_depth_ < 0) {
        out_ += s;
    }
}

void JsonNormalizer::consume(char c) {
    switch (token_) {
        case Token::kString:
        case Token::kKey:
            consume_string_byte(c);
            return;
        case Token::kLiteral:
            literal_byte(c);
            return;
        case Token::kNumber:
            if (lexeme_ == "-" && c == 'I') {
                token_ = Token::kLiteral;
                literal_byte(c);
                return;
            }
            if (is_number_byte(c)) {
                lexeme_ += c;
                return;
            }
            finish_number();
            if (error_) {
                return;
            }
            break;  // c is the byte after the number: handle it below
        case Token::kNone:
            break;
    }
    if (is_json_space(c)) {
        return;
    }
    switch (expect_) {
        case Expect::kValue:
            start_value(c);
            return;
        case Expect::kValueOrClose:
            if (c == ']') {
                close_container();
            } else {
                start_value(c);
            }
            return;
        case Expect::kKeyOrClose:
        case Expect::kKey:
            if (c == '"') {
                token_ = Token::kKey;
                key_.clear();
            } else if (c == '}' && expect_ == Expect::kKeyOrClose) {
                close_container();
            } else {
                fail();
            }
            return;
        case Expect::kColon:
            if (c == ':') {
                expect_ = Expect::kValue;
            } else {
                fail();
            }
            return;
        case Expect::kCommaOrClose: {
            bool is_object = stack_.back().is_object;
            if (c == ',') {
                expect_ = is_object ? Expect::kKey : Expect::kValue;
            } else if (c == (is_object ? '}' : ']')) {
                close_container();
            } else {
                fail();
            }
            return;
        }
        case Expect::kEnd:
            fail();  // extra data after the value
            return;
    }
}

void JsonNormalizer::start_value(char c) {
    if (object_only_ && stack_.empty() && c != '{') {
        fail();
        return;
    }
    switch (c) {
        case '"':
            begin_output();
            write("\"");
            token_ = Token::kString;
            return;
        case '{':
        case '[':
            begin_output();
            write(c == '{' ? "{" : "[");
            stack_.push_back(Frame{c == '{', 0, {}});
            expect_ = c == '{' ? Expect::kKeyOrClose : Expect::kValueOrClose;
            return;
        default:
            break;
    }
    if (c == '-' || is_digit(c)) {
        token_ = Token::kNumber;
        lexeme_.assign(1, c);
    } else if (c == 't' || c == 'f' || c == 'n' || c == 'N' || c == 'I') {
        token_ = Token::kLiteral;
        lexeme_.clear();
        literal_byte(c);
    } else {
        fail();
    }
}

void JsonNormalizer::begin_output() {
    if (stack_.empty()) {
        return;
    }
    if (key_repeated_) {
        key_repeated_ = false;
        if (mute_depth_ < 0) {
            mute_depth_ = static_cast<long>(stack_.size());
        }
        return;
    }
    Frame& frame = stack_.back();
    if (frame.count++ > 0) {
        write(", ");
    }
    if (frame.is_object) {
        write("\"");
        write(key_);
        write("\": ");
    }
}

void JsonNormalizer::end_value() {
    token_ = Token::kNone;
    if (mute_depth_ == static_cast<long>(stack_.size())) {
        mute_depth_ = -1;
    }
    if (stack_.empty()) {
        done_ = true;
        expect_ = Expect::kEnd;
    } else {
        expect_ = Expect::kCommaOrClose;
    }
}

void JsonNormalizer::close_container() {
    write(stack_.back().is_object ? "}" : "]");
    stack_.pop_back();
    end_value();
}

void JsonNormalizer::consume_string_byte(char c) {
    if (!escape_.empty()) {
        escape_ += c;
        if (escape_.size() == 2) {
            char32_t decoded = 0;
            switch (c) {
                case '"':
                case '\\':
                case '/':
                    decoded = static_cast<char32_t>(c);
                    break;
                case 'b':
                    decoded = '\b';
                    break;
                case 'f':
                    decoded = '\f';
                    break;
                case 'n':
                    decoded = '\n';
                    break;
                case 'r':
                    decoded = '\r';
                    break;
                case 't':
                    decoded = '\t';
                    break;
                case 'u':
                    return;  // four hex digits follow
                default:
                    fail();
                    return;
            }
            escape_.clear();
            emit_code_point(decoded);
            return;
        }
        if (hex_value(c) < 0) {
            fail();
            return;
        }
        if (escape_.size() < 6) {
            return;
        }
        char32_t cp = 0;
        for (size_t i = 2; i < 6; ++i) {
            cp = (cp << 4) | static_cast<char32_t>(hex_value(escape_[i]));
        }
        escape_.clear();
        emit_code_point(cp);
        return;
    }
    if (c == '\\') {
        escape_.push_back('\\');  // escape_ is empty here
        return;
    }
    if (c == '"') {
        if (high_surrogate_ != 0) {
            emit_code_point(kFlushSurrogate);
        }
        if (token_ == Token::kKey) {
            Frame& frame = stack_.back();
            key_repeated_ = !frame.keys.insert(key_).second;
            token_ = Token::kNone;
            expect_ = Expect::kColon;
        } else {
            write("\"");
            end_value();
        }
        return;
    }
    if (static_cast<unsigned char>(c) < 0x20) {
        fail();  // json.loads(strict=True) rejects raw control characters in strings
        return;
    }
    if (high_surrogate_ != 0) {
        emit_code_point(kFlushSurrogate);
    }
    if (token_ == Token::kKey) {
        key_ += c;
    } else {
        write(std::string_view(&c, 1));
    }
}

// Writes one decoded character of the current string to the key or the output. A high surrogate
// is held until the next character shows whether it pairs; kFlushSurrogate only writes a held one.
void JsonNormalizer::emit_code_point(char32_t cp) {
    std::string piece;
    if (high_surrogate_ != 0) {
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
            utf8_append(piece, 0x10000 + ((high_surrogate_ - 0xD800) << 10) + (cp - 0xDC00));
            cp = kFlushSurrogate;
        } else {
            py_json_append_u_escape(piece, static_cast<unsigned>(high_surrogate_));
        }
        high_surrogate_ = 0;
    }
    if (cp == kFlushSurrogate) {
        // nothing more to write
    } else if (cp >= 0xD800 && cp <= 0xDBFF) {
        high_surrogate_ = cp;
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        py_json_append_u_escape(piece, static_cast<unsigned>(cp));
    } else if (cp < 0x80) {
        char ch = static_cast<char>(cp);
        py_json_append_escaped(piece, std::string_view(&ch, 1), /*ensure_ascii=*/false);
    } else {
        utf8_append(piece, cp);
    }
    if (token_ == Token::kKey) {
        key_ += piece;
    } else {
        write(piece);
    }
}

void JsonNormalizer::finish_number() {
    bool is_float = false;
    if (!valid_number(lexeme_, &is_float)) {
        fail();
        return;
    }
    std::string text;
    if (!is_float) {
        text = lexeme_ == "-0" ? "0" : lexeme_;
    } else {
        // strtod, like Python's float(), rounds correctly and saturates to inf / 0 out of range.
        errno = 0;
        text = py_float_repr(std::strtod(lexeme_.c_str(), nullptr));
    }
    begin_output();
    write(text);
    end_value();
}

void JsonNormalizer::literal_byte(char c) {
    lexeme_ += c;
    bool is_prefix = false;
    for (std::string_view literal : kLiterals) {
        if (literal == lexeme_) {
            begin_output();
            write(literal);
            end_value();
            return;
        }
        if (literal.starts_with(lexeme_)) {
            is_prefix = true;
        }
    }
    if (!is_prefix) {
        fail();
    }
}

void JsonNormalizer::finish() {
    if (finished_) {
        return;
    }
    if (!error_ && token_ == Token::kNumber) {
        finish_number();
    }
    if (token_ == Token::kString) {
        // Input ended inside a string value: keep what was read and close it.
        if (high_surrogate_ != 0) {
            emit_code_point(kFlushSurrogate);
        }
        write("\"");
        end_value();
        error_ = true;
    }
    if (!done_) {
        error_ = true;
    }
    while (!stack_.empty()) {
        write(stack_.back().is_object ? "}" : "]");
        stack_.pop_back();
        if (mute_depth_ == static_cast<long>(stack_.size())) {
            mute_depth_ = -1;
        }
    }
    finished_ = true;
}

bool python_json_dumps(std::string_view text, std::string* out) {
    JsonNormalizer normalizer;
    normalizer.push(text);
    normalizer.finish();
    if (!normalizer.valid()) {
        return false;
    }
    *out = normalizer.output();
    return true;
}

}  // namespace dsserve::parsers
