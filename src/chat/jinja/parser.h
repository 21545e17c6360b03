// Parses a token stream into statements, following jinja2/parser.py's grammar and operator
// precedence for the subset chat templates use. Unsupported tags and unknown filters or tests
// fail at parse time with the line and column, as Jinja's TemplateSyntaxError does.
#pragma once

#include <string_view>

#include "chat/jinja/ast.h"

namespace dsserve::chat::jinja {

StmtList parse_template(std::string_view source);

}  // namespace dsserve::chat::jinja
