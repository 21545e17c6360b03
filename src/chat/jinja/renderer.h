// The tree-walking evaluator behind Template::render (internal to the jinja folder).
#pragma once

#include <memory>
#include <string>

#include "chat/jinja/ast.h"
#include "chat/jinja/template.h"
#include "chat/jinja/value.h"
#include "core/error.h"

namespace dsserve::chat::jinja {

struct StmtListHolder {
    StmtList body;
};

// Variables visible at one point of the template. A for-loop iteration, a macro call and a
// {% with %} block get a child scope; {% if %} does not, as in Jinja.
struct Scope {
    std::shared_ptr<Scope> parent;
    DictData vars;

    const Value* lookup(const std::string& name) const;
};

class Renderer {
public:
    Renderer(std::shared_ptr<const StmtListHolder> program, const RenderLimits& limits);

    std::string render(const Json& variables);

    // Calls a function value (global, macro or bound method).
    Value call(const Value& callee, CallArgs& args);
    // Runs a macro body with its arguments bound in a scope below the one it was defined in.
    Value call_macro(const Stmt& macro, const std::shared_ptr<Scope>& defined_in, CallArgs& args);
    // Counts one unit of work against max_steps.
    void step();
    // Rejects a string or list that would exceed max_output_bytes.
    void check_size(std::size_t bytes) const;
    const RenderLimits& limits() const { return limits_; }
    // namespace() objects are the only mutable values, so every reference cycle runs through
    // one; the renderer clears them all when it finishes.
    void register_namespace(const std::shared_ptr<NamespaceData>& ns);
    ~Renderer();

private:
    enum class Flow { kNormal, kBreak, kContinue };

    Flow exec_block(const StmtList& body, const std::shared_ptr<Scope>& scope, std::string& out);
    Flow exec(const Stmt& stmt, const std::shared_ptr<Scope>& scope, std::string& out);
    void exec_for(const Stmt& stmt, const std::shared_ptr<Scope>& scope, std::string& out);
    void exec_set(const Stmt& stmt, const std::shared_ptr<Scope>& scope);
    void define_macro(const Stmt& stmt, const std::shared_ptr<Scope>& scope);
    Value apply_filters(const std::vector<ExprPtr>& filters, Value value,
                        const std::shared_ptr<Scope>& scope);
    void append_output(std::string& out, std::string_view text) const;

    Value eval(const Expr& expr, const std::shared_ptr<Scope>& scope);
    Value eval_binary(const Expr& expr, const Value& a, const Value& b);
    bool eval_compare(CompareOp op, const Value& a, const Value& b);
    Value eval_slice(const Expr& expr, const std::shared_ptr<Scope>& scope);
    CallArgs eval_args(const Expr& expr, const std::shared_ptr<Scope>& scope);

    [[noreturn]] void fail_at(const Expr& expr, const std::string& message) const;

    std::shared_ptr<const StmtListHolder> program_;
    RenderLimits limits_;
    std::uint64_t steps_ = 0;
    int call_depth_ = 0;
    std::vector<std::shared_ptr<NamespaceData>> namespaces_;
};

// An Error that already carries its template position (or must not get one, like the message of
// raise_exception()).
class PositionedError : public Error {
public:
    using Error::Error;
};

}  // namespace dsserve::chat::jinja
