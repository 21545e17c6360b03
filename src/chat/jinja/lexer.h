// Jinja2 lexer with the environment transformers uses for chat templates: trim_blocks=True,
// lstrip_blocks=True, keep_trailing_newline=False, default delimiters. Whitespace control follows
// jinja2/lexer.py rule for rule (see the comments in lexer.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dsserve::chat::jinja {

enum class TokenType {
    kData,        // template text
    kVarBegin,    // {{
    kVarEnd,      // }}
    kBlockBegin,  // {%
    kBlockEnd,    // %}
    kName,
    kString,
    kInteger,
    kFloat,
    kOperator,
    kEnd,
};

struct Token {
    TokenType type = TokenType::kEnd;
    std::string text;  // data, name, operator, or the decoded string literal
    std::int64_t int_value = 0;
    double float_value = 0.0;
    int line = 1;
    int column = 1;
};

// Splits a template into tokens. Throws Error ("line L column C: ...") on lexical errors.
std::vector<Token> tokenize(std::string_view source);

}  // namespace dsserve::chat::jinja
