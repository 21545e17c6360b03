#include "chat/jinja/parser.h"

#include <initializer_list>

#include "chat/jinja/builtins.h"
#include "chat/jinja/lexer.h"
#include "core/error.h"

namespace dsserve::chat::jinja {
namespace {

// Deep nesting is legal Jinja but only hostile templates need it; the limit keeps the recursive
// descent (and later the recursive evaluator) far from the stack's end.
constexpr int kMaxNesting = 200;

class Parser {
public:
    explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

    StmtList parse() {
        StmtList body = parse_statements({});
        if (cur().type != TokenType::kEnd) {
            fail_at(cur(), "unexpected '" + describe(cur()) + "'");
        }
        return body;
    }

private:
    struct DepthGuard {
        explicit DepthGuard(Parser& p) : parser(p) {
            if (++parser.depth_ > kMaxNesting) {
                parser.fail_at(parser.cur(), "template nested too deeply");
            }
        }
        ~DepthGuard() { --parser.depth_; }
        Parser& parser;
    };

    const Token& cur() const { return tokens_[pos_]; }
    const Token& peek(size_t ahead = 1) const {
        return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
    }
    const Token& advance() {
        const Token& t = tokens_[pos_];
        if (pos_ + 1 < tokens_.size()) {
            ++pos_;
        }
        return t;
    }

    static std::string describe(const Token& t) {
        switch (t.type) {
            case TokenType::kEnd:
                return "end of template";
            case TokenType::kBlockBegin:
                return "{%";
            case TokenType::kBlockEnd:
                return "%}";
            case TokenType::kVarBegin:
                return "{{";
            case TokenType::kVarEnd:
                return "}}";
            case TokenType::kData:
                return "template data";
            default:
                return t.text;
        }
    }

    [[noreturn]] void fail_at(const Token& t, const std::string& message) const {
        fail("line ", t.line, " column ", t.column, ": ", message);
    }

    bool is_op(const char* op) const {
        return cur().type == TokenType::kOperator && cur().text == op;
    }
    bool is_name(const char* name) const {
        return cur().type == TokenType::kName && cur().text == name;
    }
    void expect_op(const char* op) {
        if (!is_op(op)) {
            fail_at(cur(), str_cat("expected '", op, "', got '", describe(cur()), "'"));
        }
        advance();
    }
    std::string expect_name() {
        if (cur().type != TokenType::kName) {
            fail_at(cur(), "expected a name, got '" + describe(cur()) + "'");
        }
        return advance().text;
    }
    void expect_block_end() {
        if (cur().type != TokenType::kBlockEnd) {
            fail_at(cur(), "expected end of statement block, got '" + describe(cur()) + "'");
        }
        advance();
    }

    ExprPtr make(ExprKind kind, const Token& at) {
        auto e = std::make_unique<Expr>();
        e->kind = kind;
        e->line = at.line;
        e->column = at.column;
        return e;
    }
    StmtPtr make_stmt(StmtKind kind, const Token& at) {
        auto s = std::make_unique<Stmt>();
        s->kind = kind;
        s->line = at.line;
        s->column = at.column;
        return s;
    }

    // Statements until a block tag whose name is one of `end_names` (left unconsumed, positioned
    // on the name), or the end of the template when `end_names` is empty.
    StmtList parse_statements(std::initializer_list<const char*> end_names) {
        DepthGuard guard(*this);
        StmtList body;
        while (true) {
            const Token& t = cur();
            if (t.type == TokenType::kEnd) {
                if (end_names.size() != 0) {
                    // The last name is the closing tag ("endif" after "elif", "else").
                    fail_at(t, str_cat("unexpected end of template, expected '",
                                       *(end_names.end() - 1), "'"));
                }
                return body;
            }
            if (t.type == TokenType::kData) {
                auto s = make_stmt(StmtKind::kText, t);
                s->text = t.text;
                advance();
                body.push_back(std::move(s));
                continue;
            }
            if (t.type == TokenType::kVarBegin) {
                advance();
                auto s = make_stmt(StmtKind::kPrint, t);
                s->expr = parse_tuple(true);
                if (cur().type != TokenType::kVarEnd) {
                    fail_at(cur(),
                            "expected end of print statement, got '" + describe(cur()) + "'");
                }
                advance();
                body.push_back(std::move(s));
                continue;
            }
            if (t.type != TokenType::kBlockBegin) {
                fail_at(t, "unexpected '" + describe(t) + "'");
            }
            const Token& name_token = peek();
            if (name_token.type == TokenType::kName) {
                for (const char* end : end_names) {
                    if (name_token.text == end) {
                        advance();
                        return body;
                    }
                }
            }
            advance();
            body.push_back(parse_statement());
        }
    }

    StmtPtr parse_statement() {
        const Token& t = cur();
        if (t.type != TokenType::kName) {
            fail_at(t, "tag name expected");
        }
        const std::string& name = t.text;
        if (name == "if") {
            return parse_if();
        }
        if (name == "for") {
            return parse_for();
        }
        if (name == "set") {
            return parse_set();
        }
        if (name == "macro") {
            return parse_macro();
        }
        if (name == "filter") {
            return parse_filter_block();
        }
        if (name == "with") {
            return parse_with();
        }
        if (name == "generation") {
            advance();
            expect_block_end();
            auto s = make_stmt(StmtKind::kPassthrough, t);
            s->body = parse_statements({"endgeneration"});
            advance();
            expect_block_end();
            return s;
        }
        if (name == "break" || name == "continue") {
            if (loop_depth_ == 0) {
                fail_at(t, "'" + name + "' outside of a loop");
            }
            auto s = make_stmt(name == "break" ? StmtKind::kBreak : StmtKind::kContinue, t);
            advance();
            expect_block_end();
            return s;
        }
        static const char* kUnsupported[] = {"block", "extends", "include",    "import", "from",
                                             "call",  "do",      "autoescape", "trans"};
        for (const char* u : kUnsupported) {
            if (name == u) {
                fail_at(t, "unsupported tag '" + name + "'");
            }
        }
        fail_at(t, "unknown tag '" + name + "'");
    }

    StmtPtr parse_if() {
        auto s = make_stmt(StmtKind::kIf, cur());
        advance();
        while (true) {
            ExprPtr cond = parse_tuple(false);
            expect_block_end();
            StmtList body = parse_statements({"elif", "else", "endif"});
            s->branches.emplace_back(std::move(cond), std::move(body));
            const std::string tag = advance().text;
            if (tag == "elif") {
                continue;
            }
            if (tag == "else") {
                expect_block_end();
                s->else_body = parse_statements({"endif"});
                advance();
            }
            expect_block_end();
            return s;
        }
    }

    // Assignment target: a name, names separated by commas (optionally parenthesized), or with
    // `allow_attr` a namespace attribute `ns.attr`.
    void parse_target(Stmt& s, bool allow_attr) {
        bool parens = false;
        if (is_op("(")) {
            advance();
            parens = true;
        }
        s.targets.push_back(expect_name());
        if (allow_attr && !parens && is_op(".")) {
            advance();
            s.ns_attr = expect_name();
            return;
        }
        while (is_op(",")) {
            advance();
            s.unpack = true;
            if (cur().type != TokenType::kName) {
                break;
            }
            s.targets.push_back(expect_name());
        }
        if (parens) {
            s.unpack = true;
            expect_op(")");
        }
        for (const auto& target : s.targets) {
            if (target == "true" || target == "false" || target == "none" || target == "True" ||
                target == "False" || target == "None") {
                fail_at(cur(), "cannot assign to '" + target + "'");
            }
        }
    }

    StmtPtr parse_for() {
        auto s = make_stmt(StmtKind::kFor, cur());
        advance();
        parse_target(*s, false);
        if (!is_name("in")) {
            fail_at(cur(), "expected 'in', got '" + describe(cur()) + "'");
        }
        advance();
        s->expr = parse_tuple(false, /*stop_at_if=*/true);
        if (is_name("if")) {
            advance();
            s->cond = parse_expression(true);
        }
        if (is_name("recursive")) {
            fail_at(cur(), "recursive loops are not supported");
        }
        expect_block_end();
        ++loop_depth_;
        s->body = parse_statements({"endfor", "else"});
        --loop_depth_;
        if (advance().text == "else") {
            expect_block_end();
            s->else_body = parse_statements({"endfor"});
            advance();
        }
        expect_block_end();
        return s;
    }

    StmtPtr parse_set() {
        const Token& at = cur();
        advance();
        auto s = make_stmt(StmtKind::kSet, at);
        parse_target(*s, true);
        if (is_op("=")) {
            advance();
            s->expr = parse_tuple(true);
            expect_block_end();
            return s;
        }
        if (!s->ns_attr.empty() || s->unpack) {
            fail_at(cur(), "a block set needs a single name");
        }
        s->kind = StmtKind::kSetBlock;
        parse_block_filters(*s);
        expect_block_end();
        const int saved = loop_depth_;
        loop_depth_ = 0;
        s->body = parse_statements({"endset"});
        loop_depth_ = saved;
        advance();
        expect_block_end();
        return s;
    }

    void parse_block_filters(Stmt& s) {
        while (is_op("|")) {
            advance();
            s.filters.push_back(parse_filter(nullptr));
        }
    }

    StmtPtr parse_filter_block() {
        auto s = make_stmt(StmtKind::kFilterBlock, cur());
        advance();
        s->filters.push_back(parse_filter(nullptr, /*leading_pipe=*/false));
        parse_block_filters(*s);
        expect_block_end();
        s->body = parse_statements({"endfilter"});
        advance();
        expect_block_end();
        return s;
    }

    StmtPtr parse_with() {
        auto s = make_stmt(StmtKind::kWith, cur());
        advance();
        while (cur().type != TokenType::kBlockEnd) {
            if (!s->assigns.empty()) {
                expect_op(",");
            }
            std::string target = expect_name();
            expect_op("=");
            s->assigns.emplace_back(std::move(target), parse_expression(true));
        }
        expect_block_end();
        s->body = parse_statements({"endwith"});
        advance();
        expect_block_end();
        return s;
    }

    StmtPtr parse_macro() {
        auto s = make_stmt(StmtKind::kMacro, cur());
        advance();
        s->name = expect_name();
        expect_op("(");
        while (!is_op(")")) {
            if (!s->params.empty()) {
                expect_op(",");
                if (is_op(")")) {
                    break;
                }
            }
            s->params.push_back(expect_name());
            if (is_op("=")) {
                advance();
                s->defaults.push_back(parse_expression(true));
            } else {
                s->defaults.push_back(nullptr);
            }
        }
        advance();
        expect_block_end();
        const int saved = loop_depth_;
        loop_depth_ = 0;
        s->body = parse_statements({"endmacro"});
        loop_depth_ = saved;
        advance();
        if (cur().type == TokenType::kName && cur().text == s->name) {
            advance();
        }
        expect_block_end();
        return s;
    }

    // ---- expressions (jinja2/parser.py precedence, lowest first) ----

    bool at_tuple_end() const {
        const auto type = cur().type;
        return type == TokenType::kVarEnd || type == TokenType::kBlockEnd ||
               type == TokenType::kEnd || is_op(")");
    }

    ExprPtr parse_tuple(bool with_condexpr, bool stop_at_if = false) {
        const Token& at = cur();
        std::vector<ExprPtr> items;
        bool is_tuple = false;
        while (true) {
            if (!items.empty()) {
                expect_op(",");
                is_tuple = true;
            }
            if (at_tuple_end() || (stop_at_if && is_name("if"))) {
                break;
            }
            items.push_back(with_condexpr ? parse_expression(true) : parse_or());
            if (!is_op(",")) {
                break;
            }
        }
        if (!is_tuple) {
            if (items.empty()) {
                fail_at(cur(), "expected an expression, got '" + describe(cur()) + "'");
            }
            return std::move(items.front());
        }
        auto e = make(ExprKind::kTuple, at);
        e->items = std::move(items);
        return e;
    }

    ExprPtr parse_expression(bool with_condexpr) {
        DepthGuard guard(*this);
        return with_condexpr ? parse_condexpr() : parse_or();
    }

    ExprPtr parse_condexpr() {
        ExprPtr expr = parse_or();
        while (is_name("if")) {
            auto e = make(ExprKind::kCond, cur());
            advance();
            e->a = parse_or();  // condition
            e->b = std::move(expr);
            if (is_name("else")) {
                advance();
                e->c = parse_condexpr();
            }
            expr = std::move(e);
        }
        return expr;
    }

    ExprPtr parse_or() {
        ExprPtr left = parse_and();
        while (is_name("or")) {
            auto e = make(ExprKind::kOr, cur());
            advance();
            e->a = std::move(left);
            e->b = parse_and();
            left = std::move(e);
        }
        return left;
    }

    ExprPtr parse_and() {
        ExprPtr left = parse_not();
        while (is_name("and")) {
            auto e = make(ExprKind::kAnd, cur());
            advance();
            e->a = std::move(left);
            e->b = parse_not();
            left = std::move(e);
        }
        return left;
    }

    ExprPtr parse_not() {
        if (is_name("not")) {
            DepthGuard guard(*this);
            auto e = make(ExprKind::kNot, cur());
            advance();
            e->a = parse_not();
            return e;
        }
        return parse_compare();
    }

    ExprPtr parse_compare() {
        const Token& at = cur();
        ExprPtr first = parse_math1();
        std::vector<CompareOp> ops;
        std::vector<ExprPtr> operands;
        while (true) {
            CompareOp op;
            if (is_op("==")) {
                op = CompareOp::kEq;
            } else if (is_op("!=")) {
                op = CompareOp::kNe;
            } else if (is_op("<")) {
                op = CompareOp::kLt;
            } else if (is_op("<=")) {
                op = CompareOp::kLe;
            } else if (is_op(">")) {
                op = CompareOp::kGt;
            } else if (is_op(">=")) {
                op = CompareOp::kGe;
            } else if (is_name("in")) {
                op = CompareOp::kIn;
            } else if (is_name("not") && peek().type == TokenType::kName && peek().text == "in") {
                advance();
                op = CompareOp::kNotIn;
            } else {
                break;
            }
            advance();
            ops.push_back(op);
            operands.push_back(parse_math1());
        }
        if (ops.empty()) {
            return first;
        }
        auto e = make(ExprKind::kCompare, at);
        e->items.push_back(std::move(first));
        for (auto& operand : operands) {
            e->items.push_back(std::move(operand));
        }
        e->compare_ops = std::move(ops);
        return e;
    }

    ExprPtr binary(BinaryOp op, ExprPtr left, ExprPtr right, const Token& at) {
        auto e = make(ExprKind::kBinary, at);
        e->binary_op = op;
        e->a = std::move(left);
        e->b = std::move(right);
        return e;
    }

    ExprPtr parse_math1() {
        ExprPtr left = parse_concat();
        while (is_op("+") || is_op("-")) {
            const Token& at = advance();
            const BinaryOp op = at.text == "+" ? BinaryOp::kAdd : BinaryOp::kSub;
            left = binary(op, std::move(left), parse_concat(), at);
        }
        return left;
    }

    ExprPtr parse_concat() {
        const Token& at = cur();
        ExprPtr first = parse_math2();
        if (!is_op("~")) {
            return first;
        }
        auto e = make(ExprKind::kConcat, at);
        e->items.push_back(std::move(first));
        while (is_op("~")) {
            advance();
            e->items.push_back(parse_math2());
        }
        return e;
    }

    ExprPtr parse_math2() {
        ExprPtr left = parse_pow();
        while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
            const Token& at = advance();
            BinaryOp op = BinaryOp::kMul;
            if (at.text == "/") {
                op = BinaryOp::kDiv;
            } else if (at.text == "//") {
                op = BinaryOp::kFloorDiv;
            } else if (at.text == "%") {
                op = BinaryOp::kMod;
            }
            left = binary(op, std::move(left), parse_pow(), at);
        }
        return left;
    }

    ExprPtr parse_pow() {
        ExprPtr left = parse_unary(true);
        while (is_op("**")) {
            const Token& at = advance();
            left = binary(BinaryOp::kPow, std::move(left), parse_unary(true), at);
        }
        return left;
    }

    ExprPtr parse_unary(bool with_filter) {
        DepthGuard guard(*this);
        ExprPtr node;
        if (is_op("-") || is_op("+")) {
            auto e = make(is_op("-") ? ExprKind::kNeg : ExprKind::kPos, cur());
            advance();
            e->a = parse_unary(false);
            node = std::move(e);
        } else {
            node = parse_primary();
        }
        node = parse_postfix(std::move(node));
        if (with_filter) {
            node = parse_filter_expr(std::move(node));
        }
        return node;
    }

    ExprPtr literal(const Token& at, Value v) {
        auto e = make(ExprKind::kLiteral, at);
        e->literal = std::move(v);
        return e;
    }

    ExprPtr parse_primary() {
        const Token& t = cur();
        switch (t.type) {
            case TokenType::kName: {
                advance();
                if (t.text == "true" || t.text == "True") {
                    return literal(t, Value::boolean(true));
                }
                if (t.text == "false" || t.text == "False") {
                    return literal(t, Value::boolean(false));
                }
                if (t.text == "none" || t.text == "None") {
                    return literal(t, Value::none());
                }
                auto e = make(ExprKind::kName, t);
                e->name = t.text;
                return e;
            }
            case TokenType::kString: {
                std::string text = advance().text;
                // Adjacent string literals concatenate, as in Python.
                while (cur().type == TokenType::kString) {
                    text += advance().text;
                }
                return literal(t, Value::string(std::move(text)));
            }
            case TokenType::kInteger:
                advance();
                return literal(t, Value::integer(t.int_value));
            case TokenType::kFloat:
                advance();
                return literal(t, Value::number(t.float_value));
            case TokenType::kOperator:
                if (t.text == "(") {
                    advance();
                    if (is_op(")")) {
                        advance();
                        auto e = make(ExprKind::kTuple, t);
                        return e;
                    }
                    ExprPtr inner = parse_tuple(true);
                    expect_op(")");
                    return inner;
                }
                if (t.text == "[") {
                    advance();
                    auto e = make(ExprKind::kList, t);
                    while (!is_op("]")) {
                        if (!e->items.empty()) {
                            expect_op(",");
                            if (is_op("]")) {
                                break;
                            }
                        }
                        e->items.push_back(parse_expression(true));
                    }
                    advance();
                    return e;
                }
                if (t.text == "{") {
                    advance();
                    auto e = make(ExprKind::kDict, t);
                    while (!is_op("}")) {
                        if (!e->items.empty()) {
                            expect_op(",");
                            if (is_op("}")) {
                                break;
                            }
                        }
                        e->items.push_back(parse_expression(true));
                        expect_op(":");
                        e->items.push_back(parse_expression(true));
                    }
                    advance();
                    return e;
                }
                break;
            default:
                break;
        }
        fail_at(t, "unexpected '" + describe(t) + "'");
    }

    ExprPtr parse_postfix(ExprPtr node) {
        while (true) {
            if (is_op(".")) {
                const Token& at = advance();
                if (cur().type == TokenType::kName) {
                    auto e = make(ExprKind::kGetAttr, at);
                    e->name = advance().text;
                    e->a = std::move(node);
                    node = std::move(e);
                } else if (cur().type == TokenType::kInteger) {
                    auto e = make(ExprKind::kGetItem, at);
                    e->a = std::move(node);
                    e->b = literal(cur(), Value::integer(cur().int_value));
                    advance();
                    node = std::move(e);
                } else {
                    fail_at(cur(), "expected name or number after '.'");
                }
            } else if (is_op("[")) {
                node = parse_subscript(std::move(node));
            } else if (is_op("(")) {
                node = parse_call(std::move(node));
            } else {
                return node;
            }
        }
    }

    ExprPtr parse_subscript(ExprPtr node) {
        const Token& at = advance();  // [
        std::vector<ExprPtr> parts(3);
        bool is_slice = false;
        int part = 0;
        if (!is_op(":")) {
            parts[0] = parse_expression(true);
        }
        while (is_op(":") && part < 2) {
            advance();
            is_slice = true;
            ++part;
            if (!is_op(":") && !is_op("]")) {
                parts[static_cast<size_t>(part)] = parse_expression(true);
            }
        }
        if (!is_slice && is_op(",")) {
            // obj[a, b]: the key is a tuple.
            auto tuple = make(ExprKind::kTuple, at);
            tuple->items.push_back(std::move(parts[0]));
            while (is_op(",")) {
                advance();
                if (is_op("]")) {
                    break;
                }
                tuple->items.push_back(parse_expression(true));
            }
            parts[0] = std::move(tuple);
        }
        expect_op("]");
        if (is_slice) {
            auto e = make(ExprKind::kSlice, at);
            e->a = std::move(node);
            e->items = std::move(parts);
            return e;
        }
        if (!parts[0]) {
            fail_at(at, "expected a subscript");
        }
        auto e = make(ExprKind::kGetItem, at);
        e->a = std::move(node);
        e->b = std::move(parts[0]);
        return e;
    }

    void parse_call_args(Expr& e) {
        expect_op("(");
        while (!is_op(")")) {
            if (!e.items.empty() || !e.kwargs.empty()) {
                expect_op(",");
                if (is_op(")")) {
                    break;
                }
            }
            if (is_op("*") || is_op("**")) {
                fail_at(cur(), "*args and **kwargs in calls are not supported");
            }
            if (cur().type == TokenType::kName && peek().type == TokenType::kOperator &&
                peek().text == "=") {
                std::string key = advance().text;
                advance();
                e.kwargs.emplace_back(std::move(key), parse_expression(true));
            } else {
                if (!e.kwargs.empty()) {
                    fail_at(cur(), "positional argument after keyword argument");
                }
                e.items.push_back(parse_expression(true));
            }
        }
        advance();
    }

    ExprPtr parse_call(ExprPtr node) {
        auto e = make(ExprKind::kCall, cur());
        e->a = std::move(node);
        parse_call_args(*e);
        return e;
    }

    ExprPtr parse_filter(ExprPtr node, bool leading_pipe = true) {
        (void)leading_pipe;
        const Token& at = cur();
        std::string name = expect_name();
        while (is_op(".")) {
            advance();
            name += "." + expect_name();
        }
        if (!is_known_filter(name)) {
            fail_at(at, "no filter named '" + name + "'");
        }
        auto e = make(ExprKind::kFilter, at);
        e->name = std::move(name);
        e->a = std::move(node);
        if (is_op("(")) {
            parse_call_args(*e);
        }
        return e;
    }

    ExprPtr parse_filter_expr(ExprPtr node) {
        while (true) {
            if (is_op("|")) {
                advance();
                node = parse_filter(std::move(node));
            } else if (is_name("is")) {
                node = parse_test(std::move(node));
            } else if (is_op("(")) {
                node = parse_call(std::move(node));
            } else {
                return node;
            }
        }
    }

    ExprPtr parse_test(ExprPtr node) {
        const Token& at = advance();  // is
        auto e = make(ExprKind::kTest, at);
        if (is_name("not")) {
            advance();
            e->negated = true;
        }
        const Token& name_token = cur();
        e->name = expect_name();
        while (is_op(".")) {
            advance();
            e->name += "." + expect_name();
        }
        if (!is_known_test(e->name)) {
            fail_at(name_token, "no test named '" + e->name + "'");
        }
        e->a = std::move(node);
        if (is_op("(")) {
            parse_call_args(*e);
        } else {
            const auto type = cur().type;
            const bool starts_arg = type == TokenType::kName || type == TokenType::kString ||
                                    type == TokenType::kInteger || type == TokenType::kFloat ||
                                    is_op("(") || is_op("[") || is_op("{");
            if (starts_arg && !is_name("else") && !is_name("or") && !is_name("and")) {
                if (is_name("is")) {
                    fail_at(cur(), "you cannot chain multiple tests with is");
                }
                e->items.push_back(parse_postfix(parse_primary()));
            }
        }
        return e;
    }

    std::vector<Token> tokens_;
    size_t pos_ = 0;
    int depth_ = 0;
    int loop_depth_ = 0;
};

}  // namespace

StmtList parse_template(std::string_view source) {
    return Parser(tokenize(source)).parse();
}

}  // namespace dsserve::chat::jinja
