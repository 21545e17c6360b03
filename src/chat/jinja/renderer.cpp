#include "chat/jinja/renderer.h"

#include <cmath>
#include <limits>
#include <optional>

#include "chat/jinja/builtins.h"
#include "chat/jinja/parser.h"
#include "chat/jinja/pystring.h"

namespace dsserve::chat::jinja {
namespace {

[[noreturn]] void unsupported_operands(const char* op, const Value& a, const Value& b) {
    if (std::string_view(op) == "+" && a.is_string()) {
        fail("can only concatenate str (not \"", type_name(b), "\") to str");
    }
    fail("unsupported operand type(s) for ", op, ": '", type_name(a), "' and '", type_name(b), "'");
}

// Python integers do not overflow; ours are 64-bit, so overflow is an Error instead.
std::int64_t checked_add(std::int64_t a, std::int64_t b) {
    std::int64_t r = 0;
    DS_CHECK(!__builtin_add_overflow(a, b, &r),
             "integer overflow (integers are limited to 64 bits)");
    return r;
}
std::int64_t checked_sub(std::int64_t a, std::int64_t b) {
    std::int64_t r = 0;
    DS_CHECK(!__builtin_sub_overflow(a, b, &r),
             "integer overflow (integers are limited to 64 bits)");
    return r;
}
std::int64_t checked_mul(std::int64_t a, std::int64_t b) {
    std::int64_t r = 0;
    DS_CHECK(!__builtin_mul_overflow(a, b, &r),
             "integer overflow (integers are limited to 64 bits)");
    return r;
}

// Python's floor division and modulo for integers.
std::int64_t floor_div(std::int64_t a, std::int64_t b) {
    DS_CHECK(b != 0, "integer division or modulo by zero");
    DS_CHECK(!(a == std::numeric_limits<std::int64_t>::min() && b == -1),
             "integer overflow (integers are limited to 64 bits)");
    std::int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) {
        --q;
    }
    return q;
}

std::int64_t floor_mod(std::int64_t a, std::int64_t b) {
    DS_CHECK(b != 0, "integer division or modulo by zero");
    if (b == -1) {
        return 0;
    }
    std::int64_t r = a % b;
    if (r != 0 && ((r < 0) != (b < 0))) {
        r += b;
    }
    return r;
}

bool contains(const Value& container, const Value& item) {
    switch (container.kind()) {
        case Value::Kind::kUndefined:
            return false;
        case Value::Kind::kString:
            if (!item.is_string()) {
                fail("'in <string>' requires string as left operand, not ", type_name(item));
            }
            return container.as_string().find(item.as_string()) != std::string::npos;
        case Value::Kind::kList:
            for (const auto& element : container.as_list().items) {
                if (equals(element, item)) {
                    return true;
                }
            }
            return false;
        case Value::Kind::kDict:
            return item.is_string() && container.as_dict().find(item.as_string()) != nullptr;
        default:
            fail("argument of type '", type_name(container), "' is not iterable");
    }
}

}  // namespace

const Value* Scope::lookup(const std::string& name) const {
    for (const Scope* s = this; s != nullptr; s = s->parent.get()) {
        if (const Value* v = s->vars.find(name)) {
            return v;
        }
    }
    return nullptr;
}

Renderer::Renderer(std::shared_ptr<const StmtListHolder> program, const RenderLimits& limits)
    : program_(std::move(program)), limits_(limits) {}

Renderer::~Renderer() {
    for (auto& ns : namespaces_) {
        ns->attrs = DictData();
        ns->loop_items.reset();
    }
}

void Renderer::register_namespace(const std::shared_ptr<NamespaceData>& ns) {
    namespaces_.push_back(ns);
}

void Renderer::step() {
    if (++steps_ > limits_.max_steps) {
        throw PositionedError(
            str_cat("template exceeded its work limit of ", limits_.max_steps, " steps"));
    }
}

void Renderer::check_size(std::size_t bytes) const {
    if (bytes > limits_.max_output_bytes) {
        throw PositionedError(
            str_cat("template output exceeds the limit of ", limits_.max_output_bytes, " bytes"));
    }
}

void Renderer::append_output(std::string& out, std::string_view text) const {
    check_size(out.size() + text.size());
    out += text;
}

void Renderer::fail_at(const Expr& expr, const std::string& message) const {
    throw PositionedError(str_cat("line ", expr.line, ": ", message));
}

std::string Renderer::render(const Json& variables) {
    DS_CHECK(variables.is_object(), "template variables must be a JSON object");
    auto globals = std::make_shared<Scope>();
    add_globals(globals->vars);
    auto context = std::make_shared<Scope>();
    context->parent = globals;
    for (const auto& [key, value] : variables.items()) {
        context->vars.set(key, from_json(value));
    }
    auto root = std::make_shared<Scope>();
    root->parent = context;
    std::string out;
    exec_block(program_->body, root, out);
    return out;
}

Renderer::Flow Renderer::exec_block(const StmtList& body, const std::shared_ptr<Scope>& scope,
                                    std::string& out) {
    for (const auto& stmt : body) {
        const Flow flow = exec(*stmt, scope, out);
        if (flow != Flow::kNormal) {
            return flow;
        }
    }
    return Flow::kNormal;
}

Renderer::Flow Renderer::exec(const Stmt& stmt, const std::shared_ptr<Scope>& scope,
                              std::string& out) {
    step();
    try {
        switch (stmt.kind) {
            case StmtKind::kText:
                append_output(out, stmt.text);
                return Flow::kNormal;
            case StmtKind::kPrint:
                append_output(out, to_str(eval(*stmt.expr, scope)));
                return Flow::kNormal;
            case StmtKind::kIf:
                for (const auto& [cond, body] : stmt.branches) {
                    if (truthy(eval(*cond, scope))) {
                        return exec_block(body, scope, out);
                    }
                }
                return exec_block(stmt.else_body, scope, out);
            case StmtKind::kFor:
                exec_for(stmt, scope, out);
                return Flow::kNormal;
            case StmtKind::kSet:
                exec_set(stmt, scope);
                return Flow::kNormal;
            case StmtKind::kSetBlock: {
                auto inner = std::make_shared<Scope>();
                inner->parent = scope;
                std::string captured;
                exec_block(stmt.body, inner, captured);
                scope->vars.set(
                    stmt.targets[0],
                    apply_filters(stmt.filters, Value::string(std::move(captured)), scope));
                return Flow::kNormal;
            }
            case StmtKind::kMacro:
                define_macro(stmt, scope);
                return Flow::kNormal;
            case StmtKind::kFilterBlock: {
                auto inner = std::make_shared<Scope>();
                inner->parent = scope;
                std::string captured;
                exec_block(stmt.body, inner, captured);
                append_output(out, to_str(apply_filters(
                                       stmt.filters, Value::string(std::move(captured)), scope)));
                return Flow::kNormal;
            }
            case StmtKind::kWith: {
                auto inner = std::make_shared<Scope>();
                inner->parent = scope;
                for (const auto& [name, value] : stmt.assigns) {
                    inner->vars.set(name, eval(*value, scope));
                }
                return exec_block(stmt.body, inner, out);
            }
            case StmtKind::kBreak:
                return Flow::kBreak;
            case StmtKind::kContinue:
                return Flow::kContinue;
            case StmtKind::kPassthrough:
                return exec_block(stmt.body, scope, out);
        }
    } catch (const PositionedError&) {
        throw;
    } catch (const Error& e) {
        throw PositionedError(str_cat("line ", stmt.line, ": ", e.what()));
    }
    return Flow::kNormal;
}

void Renderer::exec_for(const Stmt& stmt, const std::shared_ptr<Scope>& scope, std::string& out) {
    const auto bind = [&](Scope& target, const Value& item) {
        if (!stmt.unpack) {
            target.vars.set(stmt.targets[0], item);
            return;
        }
        const std::vector<Value> parts = iterate(item);
        DS_CHECK(parts.size() >= stmt.targets.size(), "not enough values to unpack (expected ",
                 stmt.targets.size(), ", got ", parts.size(), ")");
        DS_CHECK(parts.size() <= stmt.targets.size(), "too many values to unpack (expected ",
                 stmt.targets.size(), ")");
        for (size_t k = 0; k < parts.size(); ++k) {
            target.vars.set(stmt.targets[k], parts[k]);
        }
    };
    std::vector<Value> items = iterate(eval(*stmt.expr, scope));
    if (stmt.cond) {
        std::vector<Value> kept;
        for (auto& item : items) {
            auto probe = std::make_shared<Scope>();
            probe->parent = scope;
            bind(*probe, item);
            if (truthy(eval(*stmt.cond, probe))) {
                kept.push_back(std::move(item));
            }
        }
        items = std::move(kept);
    }
    if (items.empty()) {
        auto inner = std::make_shared<Scope>();
        inner->parent = scope;
        exec_block(stmt.else_body, inner, out);
        return;
    }
    auto shared_items = std::make_shared<const ListData>(ListData{std::move(items), false});
    const size_t n = shared_items->items.size();
    for (size_t i = 0; i < n; ++i) {
        step();
        auto inner = std::make_shared<Scope>();
        inner->parent = scope;
        bind(*inner, shared_items->items[i]);
        auto loop = std::make_shared<NamespaceData>();
        loop->is_loop = true;
        loop->loop_items = shared_items;
        loop->loop_index = i;
        inner->vars.set("loop", Value::ns(std::move(loop)));
        if (exec_block(stmt.body, inner, out) == Flow::kBreak) {
            break;
        }
    }
}

void Renderer::exec_set(const Stmt& stmt, const std::shared_ptr<Scope>& scope) {
    Value value = eval(*stmt.expr, scope);
    if (!stmt.ns_attr.empty()) {
        const Value* target = scope->lookup(stmt.targets[0]);
        DS_CHECK(target != nullptr && target->is(Value::Kind::kNamespace) &&
                     !target->as_namespace().is_loop,
                 "cannot assign attribute on non-namespace object");
        DS_CHECK(stmt.ns_attr[0] != '_', "cannot store underscore-prefixed attribute '",
                 stmt.ns_attr, "' on a namespace");
        target->as_namespace().attrs.set(stmt.ns_attr, std::move(value));
        return;
    }
    if (!stmt.unpack) {
        scope->vars.set(stmt.targets[0], std::move(value));
        return;
    }
    const std::vector<Value> parts = iterate(value);
    DS_CHECK(parts.size() == stmt.targets.size(), "cannot unpack ", parts.size(), " values into ",
             stmt.targets.size(), " names");
    for (size_t k = 0; k < parts.size(); ++k) {
        scope->vars.set(stmt.targets[k], parts[k]);
    }
}

void Renderer::define_macro(const Stmt& stmt, const std::shared_ptr<Scope>& scope) {
    auto fn = std::make_shared<Function>();
    fn->name = stmt.name;
    fn->is_macro = true;
    // A weak reference: the scope holds the macro, so a strong one would be a cycle.
    std::weak_ptr<Scope> weak = scope;
    const Stmt* def = &stmt;
    fn->call = [def, weak](Renderer& renderer, CallArgs& args) {
        const auto parent = weak.lock();
        DS_CHECK(parent != nullptr, "macro '", def->name, "' called after its scope ended");
        return renderer.call_macro(*def, parent, args);
    };
    scope->vars.set(stmt.name, Value::function(std::move(fn)));
}

Value Renderer::call_macro(const Stmt& macro, const std::shared_ptr<Scope>& defined_in,
                           CallArgs& args) {
    DS_CHECK(args.positional.size() <= macro.params.size(), "macro '", macro.name,
             "' takes not more than ", macro.params.size(), " argument(s)");
    auto local = std::make_shared<Scope>();
    local->parent = defined_in;
    std::vector<bool> bound(macro.params.size(), false);
    for (size_t i = 0; i < args.positional.size(); ++i) {
        local->vars.set(macro.params[i], args.positional[i]);
        bound[i] = true;
    }
    for (auto& [key, value] : args.keyword) {
        size_t i = 0;
        while (i < macro.params.size() && macro.params[i] != key) {
            ++i;
        }
        DS_CHECK(i < macro.params.size(), "macro '", macro.name, "' takes no keyword argument '",
                 key, "'");
        DS_CHECK(!bound[i], "macro '", macro.name, "' got multiple values for argument '", key,
                 "'");
        local->vars.set(key, value);
        bound[i] = true;
    }
    for (size_t i = 0; i < macro.params.size(); ++i) {
        if (bound[i]) {
            continue;
        }
        if (macro.defaults[i]) {
            local->vars.set(macro.params[i], eval(*macro.defaults[i], local));
        } else {
            local->vars.set(
                macro.params[i],
                Value::undefined(str_cat("parameter '", macro.params[i], "' was not provided")));
        }
    }
    if (++call_depth_ > limits_.max_call_depth) {
        --call_depth_;
        throw PositionedError(str_cat("macro calls nested deeper than ", limits_.max_call_depth));
    }
    std::string out;
    try {
        exec_block(macro.body, local, out);
    } catch (...) {
        --call_depth_;
        throw;
    }
    --call_depth_;
    return Value::string(std::move(out));
}

Value Renderer::call(const Value& callee, CallArgs& args) {
    step();
    if (callee.is(Value::Kind::kFunction)) {
        return callee.as_function().call(*this, args);
    }
    if (callee.is_undefined()) {
        raise_undefined(callee);
    }
    fail("'", type_name(callee), "' object is not callable");
}

Value Renderer::apply_filters(const std::vector<ExprPtr>& filters, Value value,
                              const std::shared_ptr<Scope>& scope) {
    for (const auto& filter : filters) {
        CallArgs args = eval_args(*filter, scope);
        value = apply_filter(*this, filter->name, value, args);
    }
    return value;
}

CallArgs Renderer::eval_args(const Expr& expr, const std::shared_ptr<Scope>& scope) {
    CallArgs args;
    for (const auto& item : expr.items) {
        args.positional.push_back(eval(*item, scope));
    }
    for (const auto& [key, value] : expr.kwargs) {
        args.keyword.emplace_back(key, eval(*value, scope));
    }
    return args;
}

Value Renderer::eval(const Expr& expr, const std::shared_ptr<Scope>& scope) {
    step();
    switch (expr.kind) {
        case ExprKind::kLiteral:
            return expr.literal;
        case ExprKind::kName: {
            const Value* v = scope->lookup(expr.name);
            return v != nullptr ? *v : Value::undefined(str_cat("'", expr.name, "' is undefined"));
        }
        case ExprKind::kList:
        case ExprKind::kTuple: {
            std::vector<Value> items;
            for (const auto& item : expr.items) {
                items.push_back(eval(*item, scope));
            }
            return Value::list(std::move(items), expr.kind == ExprKind::kTuple);
        }
        case ExprKind::kDict: {
            auto dict = std::make_shared<DictData>();
            for (size_t i = 0; i + 1 < expr.items.size(); i += 2) {
                const Value key = eval(*expr.items[i], scope);
                if (!key.is_string()) {
                    fail_at(expr, "dict keys must be strings in chat templates");
                }
                dict->set(key.as_string(), eval(*expr.items[i + 1], scope));
            }
            return Value::dict(std::move(dict));
        }
        case ExprKind::kGetAttr: {
            const Value obj = eval(*expr.a, scope);
            if (obj.is_undefined()) {
                raise_undefined(obj);
            }
            return get_attr(obj, expr.name);
        }
        case ExprKind::kGetItem: {
            const Value obj = eval(*expr.a, scope);
            const Value key = eval(*expr.b, scope);
            if (obj.is_undefined()) {
                raise_undefined(obj);
            }
            return get_item(obj, key);
        }
        case ExprKind::kSlice:
            return eval_slice(expr, scope);
        case ExprKind::kCall: {
            const Value callee = eval(*expr.a, scope);
            CallArgs args = eval_args(expr, scope);
            return call(callee, args);
        }
        case ExprKind::kFilter: {
            const Value value = eval(*expr.a, scope);
            CallArgs args = eval_args(expr, scope);
            return apply_filter(*this, expr.name, value, args);
        }
        case ExprKind::kTest: {
            const Value value = eval(*expr.a, scope);
            CallArgs args = eval_args(expr, scope);
            return Value::boolean(apply_test(*this, expr.name, value, args) != expr.negated);
        }
        case ExprKind::kNot:
            return Value::boolean(!truthy(eval(*expr.a, scope)));
        case ExprKind::kNeg:
        case ExprKind::kPos: {
            const Value v = eval(*expr.a, scope);
            if (v.is_undefined()) {
                raise_undefined(v);
            }
            if (!v.is_numeric()) {
                fail("bad operand type for unary ", expr.kind == ExprKind::kNeg ? "-" : "+", ": '",
                     type_name(v), "'");
            }
            if (v.is(Value::Kind::kFloat)) {
                return Value::number(expr.kind == ExprKind::kNeg ? -v.as_float() : v.as_float());
            }
            if (expr.kind == ExprKind::kPos) {
                return Value::integer(v.as_int());
            }
            DS_CHECK(v.as_int() != std::numeric_limits<std::int64_t>::min(),
                     "integer overflow (integers are limited to 64 bits)");
            return Value::integer(-v.as_int());
        }
        case ExprKind::kBinary: {
            const Value a = eval(*expr.a, scope);
            const Value b = eval(*expr.b, scope);
            return eval_binary(expr, a, b);
        }
        case ExprKind::kAnd: {
            Value a = eval(*expr.a, scope);
            return truthy(a) ? eval(*expr.b, scope) : a;
        }
        case ExprKind::kOr: {
            Value a = eval(*expr.a, scope);
            return truthy(a) ? a : eval(*expr.b, scope);
        }
        case ExprKind::kCompare: {
            Value left = eval(*expr.items[0], scope);
            for (size_t i = 0; i < expr.compare_ops.size(); ++i) {
                Value right = eval(*expr.items[i + 1], scope);
                if (!eval_compare(expr.compare_ops[i], left, right)) {
                    return Value::boolean(false);
                }
                left = std::move(right);
            }
            return Value::boolean(true);
        }
        case ExprKind::kCond:
            if (truthy(eval(*expr.a, scope))) {
                return eval(*expr.b, scope);
            }
            if (expr.c) {
                return eval(*expr.c, scope);
            }
            return Value::undefined(str_cat("the inline if-expression on line ", expr.line,
                                            " evaluated to false and no else section was "
                                            "defined."));
        case ExprKind::kConcat: {
            std::string out;
            for (const auto& item : expr.items) {
                out += to_str(eval(*item, scope));
                check_size(out.size());
            }
            return Value::string(std::move(out));
        }
    }
    return Value();
}

Value Renderer::eval_binary(const Expr& expr, const Value& a, const Value& b) {
    if (a.is_undefined()) {
        raise_undefined(a);
    }
    if (b.is_undefined()) {
        raise_undefined(b);
    }
    const bool floats = a.is(Value::Kind::kFloat) || b.is(Value::Kind::kFloat);
    const bool numbers = a.is_numeric() && b.is_numeric();
    switch (expr.binary_op) {
        case BinaryOp::kAdd:
            if (numbers) {
                if (floats) {
                    return Value::number(a.as_float() + b.as_float());
                }
                return Value::integer(checked_add(a.as_int(), b.as_int()));
            }
            if (a.is_string() && b.is_string()) {
                check_size(a.as_string().size() + b.as_string().size());
                return Value::string(a.as_string() + b.as_string());
            }
            if (a.is(Value::Kind::kList) && b.is(Value::Kind::kList) &&
                a.as_list().is_tuple == b.as_list().is_tuple) {
                std::vector<Value> items = a.as_list().items;
                items.insert(items.end(), b.as_list().items.begin(), b.as_list().items.end());
                check_size(items.size() * sizeof(Value));
                return Value::list(std::move(items), a.as_list().is_tuple);
            }
            unsupported_operands("+", a, b);
        case BinaryOp::kSub:
            if (!numbers) {
                unsupported_operands("-", a, b);
            }
            if (floats) {
                return Value::number(a.as_float() - b.as_float());
            }
            return Value::integer(checked_sub(a.as_int(), b.as_int()));
        case BinaryOp::kMul: {
            if (numbers) {
                if (floats) {
                    return Value::number(a.as_float() * b.as_float());
                }
                return Value::integer(checked_mul(a.as_int(), b.as_int()));
            }
            const bool a_count = a.is(Value::Kind::kInt) || a.is(Value::Kind::kBool);
            const bool b_count = b.is(Value::Kind::kInt) || b.is(Value::Kind::kBool);
            const Value* seq = a_count ? &b : &a;
            const Value* count = a_count ? &a : &b;
            if (!(a_count || b_count) || !(seq->is_string() || seq->is(Value::Kind::kList))) {
                unsupported_operands("*", a, b);
            }
            const std::int64_t times = std::max<std::int64_t>(0, count->as_int());
            if (seq->is_string()) {
                const std::string& s = seq->as_string();
                if (!s.empty()) {
                    check_size(static_cast<std::size_t>(times) > limits_.max_output_bytes
                                   ? limits_.max_output_bytes + 1
                                   : s.size() * static_cast<std::size_t>(times));
                }
                std::string out;
                for (std::int64_t k = 0; k < times && !s.empty(); ++k) {
                    out += s;
                }
                return Value::string(std::move(out));
            }
            const auto& items = seq->as_list().items;
            if (!items.empty()) {
                check_size(static_cast<std::size_t>(times) > limits_.max_output_bytes
                               ? limits_.max_output_bytes + 1
                               : items.size() * sizeof(Value) * static_cast<std::size_t>(times));
            }
            std::vector<Value> out;
            for (std::int64_t k = 0; k < times && !items.empty(); ++k) {
                out.insert(out.end(), items.begin(), items.end());
            }
            return Value::list(std::move(out), seq->as_list().is_tuple);
        }
        case BinaryOp::kDiv:
            if (!numbers) {
                unsupported_operands("/", a, b);
            }
            DS_CHECK(b.as_float() != 0.0, "division by zero");
            return Value::number(a.as_float() / b.as_float());
        case BinaryOp::kFloorDiv:
            if (!numbers) {
                unsupported_operands("//", a, b);
            }
            if (floats) {
                DS_CHECK(b.as_float() != 0.0, "float floor division by zero");
                return Value::number(std::floor(a.as_float() / b.as_float()));
            }
            return Value::integer(floor_div(a.as_int(), b.as_int()));
        case BinaryOp::kMod:
            if (a.is_string()) {
                fail_at(expr, "string formatting with '%' is not supported");
            }
            if (!numbers) {
                unsupported_operands("%", a, b);
            }
            if (floats) {
                const double y = b.as_float();
                DS_CHECK(y != 0.0, "float modulo");
                double m = std::fmod(a.as_float(), y);
                if (m != 0.0 && ((m < 0) != (y < 0))) {
                    m += y;
                }
                return Value::number(m);
            }
            return Value::integer(floor_mod(a.as_int(), b.as_int()));
        case BinaryOp::kPow: {
            if (!numbers) {
                unsupported_operands("** or pow()", a, b);
            }
            if (!floats && b.as_int() >= 0) {
                std::int64_t result = 1;
                std::int64_t base = a.as_int();
                std::int64_t exp = b.as_int();
                while (exp > 0) {
                    if (exp & 1) {
                        result = checked_mul(result, base);
                    }
                    exp >>= 1;
                    if (exp > 0) {
                        base = checked_mul(base, base);
                    }
                }
                return Value::integer(result);
            }
            DS_CHECK(!(a.as_float() == 0.0 && b.as_float() < 0),
                     "0.0 cannot be raised to a negative power");
            return Value::number(std::pow(a.as_float(), b.as_float()));
        }
    }
    return Value();
}

bool Renderer::eval_compare(CompareOp op, const Value& a, const Value& b) {
    switch (op) {
        case CompareOp::kEq:
            return equals(a, b);
        case CompareOp::kNe:
            return !equals(a, b);
        case CompareOp::kLt:
            return compare(a, b) < 0;
        case CompareOp::kLe:
            return compare(a, b) <= 0;
        case CompareOp::kGt:
            return compare(a, b) > 0;
        case CompareOp::kGe:
            return compare(a, b) >= 0;
        case CompareOp::kIn:
            return contains(b, a);
        case CompareOp::kNotIn:
            return !contains(b, a);
    }
    return false;
}

Value Renderer::eval_slice(const Expr& expr, const std::shared_ptr<Scope>& scope) {
    const Value obj = eval(*expr.a, scope);
    std::optional<std::int64_t> parts[3];
    for (size_t k = 0; k < 3; ++k) {
        if (!expr.items[k]) {
            continue;
        }
        const Value v = eval(*expr.items[k], scope);
        if (v.is_none()) {
            continue;
        }
        if (!(v.is(Value::Kind::kInt) || v.is(Value::Kind::kBool))) {
            fail("slice indices must be integers or None");
        }
        parts[k] = v.as_int();
    }
    if (obj.is_undefined()) {
        raise_undefined(obj);
    }
    const std::int64_t step_by = parts[2].value_or(1);
    DS_CHECK(step_by != 0, "slice step cannot be zero");
    std::vector<size_t> offsets;
    std::int64_t length = 0;
    if (obj.is_string()) {
        offsets = code_point_offsets(obj.as_string());
        length = static_cast<std::int64_t>(offsets.size()) - 1;
    } else if (obj.is(Value::Kind::kList)) {
        length = static_cast<std::int64_t>(obj.as_list().items.size());
    } else {
        return Value::undefined(str_cat("'", type_name(obj), " object' is not subscriptable"));
    }
    // Python's slice.indices().
    const auto clamp = [&](std::optional<std::int64_t> v, std::int64_t fallback) {
        if (!v) {
            return fallback;
        }
        std::int64_t x = *v;
        if (x < 0) {
            x += length;
            if (x < 0) {
                x = step_by < 0 ? -1 : 0;
            }
        } else if (x >= length) {
            x = step_by < 0 ? length - 1 : length;
        }
        return x;
    };
    const std::int64_t start = clamp(parts[0], step_by < 0 ? length - 1 : 0);
    const std::int64_t stop = clamp(parts[1], step_by < 0 ? -1 : length);
    std::vector<std::int64_t> picks;
    for (std::int64_t i = start; step_by > 0 ? i < stop : i > stop; i += step_by) {
        picks.push_back(i);
    }
    if (obj.is_string()) {
        const std::string& s = obj.as_string();
        std::string out;
        for (const auto i : picks) {
            const auto k = static_cast<size_t>(i);
            out += s.substr(offsets[k], offsets[k + 1] - offsets[k]);
        }
        return Value::string(std::move(out));
    }
    std::vector<Value> items;
    for (const auto i : picks) {
        items.push_back(obj.as_list().items[static_cast<size_t>(i)]);
    }
    return Value::list(std::move(items), obj.as_list().is_tuple);
}

Template::Template(std::string_view source) {
    auto holder = std::make_shared<StmtListHolder>();
    holder->body = parse_template(source);
    program_ = std::move(holder);
}

std::string Template::render(const Json& variables, const RenderLimits& limits) const {
    Renderer renderer(program_, limits);
    return renderer.render(variables);
}

}  // namespace dsserve::chat::jinja
