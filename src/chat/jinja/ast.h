// Syntax tree of a parsed template. One node type for expressions and one for statements; the
// fields a node uses depend on its kind (commented per kind).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/jinja/value.h"

namespace dsserve::chat::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using StmtList = std::vector<StmtPtr>;

enum class ExprKind {
    kLiteral,  // literal
    kName,     // name
    kList,     // items
    kTuple,    // items
    kDict,     // items: key0, value0, key1, value1, ...
    kGetAttr,  // a.name
    kGetItem,  // a[b]
    kSlice,    // a[items[0]:items[1]:items[2]], null entries for omitted parts
    kCall,     // a(items..., kwargs...)
    kFilter,   // a | name(items..., kwargs...); a is null inside {% filter %} / {% set %} blocks
    kTest,     // a is [not] name(items..., kwargs...)
    kNot,      // not a
    kNeg,      // -a
    kPos,      // +a
    kBinary,   // a op b
    kAnd,      // a and b
    kOr,       // a or b
    kCompare,  // items[0] cmp_ops[0] items[1] cmp_ops[1] items[2] ...
    kCond,     // b if a else c (c may be null)
    kConcat,   // items joined with ~
};

enum class BinaryOp { kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow };
enum class CompareOp { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn };

struct Expr {
    ExprKind kind = ExprKind::kLiteral;
    int line = 0;
    int column = 0;
    Value literal;
    std::string name;
    BinaryOp binary_op = BinaryOp::kAdd;
    std::vector<CompareOp> compare_ops;
    bool negated = false;
    ExprPtr a, b, c;
    std::vector<ExprPtr> items;
    std::vector<std::pair<std::string, ExprPtr>> kwargs;
};

enum class StmtKind {
    kText,         // text
    kPrint,        // {{ expr }}
    kIf,           // branches, else_body
    kFor,          // targets in expr [if cond]: body, else_body
    kSet,          // targets (or ns_attr on targets[0]) = expr
    kSetBlock,     // targets[0] = rendered body, through filters
    kMacro,        // name(params with defaults): body
    kFilterBlock,  // body through filters
    kWith,         // assigns: body
    kBreak,
    kContinue,
    kPassthrough,  // {% generation %}: body rendered as is
};

struct Stmt {
    StmtKind kind = StmtKind::kText;
    int line = 0;
    int column = 0;
    std::string text;
    ExprPtr expr;
    ExprPtr cond;
    std::vector<std::pair<ExprPtr, StmtList>> branches;
    StmtList body;
    StmtList else_body;
    std::vector<std::string> targets;
    std::string ns_attr;  // {% set ns.attr = ... %}: targets[0] is the namespace name
    bool unpack = false;  // targets came as a tuple
    std::vector<ExprPtr> filters;
    std::string name;
    std::vector<std::string> params;
    std::vector<ExprPtr> defaults;  // one per param, null without a default
    std::vector<std::pair<std::string, ExprPtr>> assigns;
};

}  // namespace dsserve::chat::jinja
