// Behaviour the golden files cannot show: error positions, limits against hostile templates,
// and Jinja's Undefined rules at the edges.
#include "chat/jinja/renderer.h"

#include <gtest/gtest.h>

#include "chat/jinja/template.h"

namespace dsserve::chat::jinja {
namespace {

std::string render(const std::string& source, const Json& vars = Json::object(),
                   const RenderLimits& limits = {}) {
    return Template(source).render(vars, limits);
}

std::string error_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    return "<no error>";
}

TEST(JinjaRenderer, SyntaxErrorsNameLineAndColumn) {
    EXPECT_EQ(error_of([] { Template("line one\n  {% foo %}"); }),
              "line 2 column 6: unknown tag 'foo'");
    EXPECT_EQ(error_of([] { Template("{{ x | nope }}"); }),
              "line 1 column 8: no filter named 'nope'");
    EXPECT_EQ(error_of([] { Template("{% include 'other.jinja' %}"); }),
              "line 1 column 4: unsupported tag 'include'");
    EXPECT_EQ(error_of([] { Template("a\nb {% if x %}"); }),
              "line 2 column 13: unexpected end of template, expected 'endif'");
}

TEST(JinjaRenderer, RuntimeErrorsNameTheLine) {
    EXPECT_EQ(error_of([] { render("ok\n{{ 1 + 'a' }}"); }),
              "line 2: unsupported operand type(s) for +: 'int' and 'str'");
    EXPECT_EQ(error_of([] { render("{{ x.y }}"); }), "line 1: 'x' is undefined");
}

TEST(JinjaRenderer, RaiseExceptionMessageIsKeptVerbatim) {
    EXPECT_EQ(error_of([] { render("{{ raise_exception('Roles must alternate') }}"); }),
              "Roles must alternate");
}

TEST(JinjaRenderer, SandboxRefusesMutatingMethods) {
    EXPECT_NE(error_of([] {
                  render("{% set l = [] %}{{ l.append(1) }}");
              }).find("access to attribute 'append' of 'list' object is unsafe"),
              std::string::npos);
    EXPECT_EQ(render("{% set ns = namespace(n=1) %}{% set ns.n = ns.n + 1 %}{{ ns.n }}"), "2");
}

TEST(JinjaRenderer, StepLimitStopsRunawayLoops) {
    RenderLimits limits;
    limits.max_steps = 100000;
    const std::string source =
        "{% for a in range(1000) %}{% for b in range(1000) %}x{% endfor %}{% endfor %}";
    EXPECT_NE(error_of([&] { render(source, Json::object(), limits); }).find("work limit"),
              std::string::npos);
}

TEST(JinjaRenderer, OutputLimitStopsStringBlowup) {
    RenderLimits limits;
    limits.max_output_bytes = 1 << 20;
    const std::string doubling =
        "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}"
        "{% endfor %}{{ ns.s|length }}";
    EXPECT_NE(error_of([&] { render(doubling, Json::object(), limits); }).find("exceeds the limit"),
              std::string::npos);
    EXPECT_NE(error_of([&] {
                  render("{{ 'x' * 100000000 }}", Json::object(), limits);
              }).find("exceeds the limit"),
              std::string::npos);
}

TEST(JinjaRenderer, MacroRecursionIsBounded) {
    const std::string source = "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}";
    EXPECT_NE(error_of([&] { render(source); }).find("nested deeper"), std::string::npos);
}

TEST(JinjaRenderer, DeepNestingFailsAtParse) {
    const std::string source =
        "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
    EXPECT_NE(error_of([&] { Template t(source); }).find("nested too deeply"), std::string::npos);
}

TEST(JinjaRenderer, NamespaceCyclesDoNotLeak) {
    // Run under ASan with leak detection: the renderer breaks the cycle when it finishes.
    EXPECT_EQ(render("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns.me.me is defined }}"),
              "True");
}

TEST(JinjaRenderer, VariablesKeepJsonTypes) {
    const Json vars = Json::parse(R"({"i": 3, "f": 3.0, "big": 18446744073709551615, "s": "é"})");
    EXPECT_EQ(render("{{ i }} {{ f }} {{ i is integer }} {{ f is float }} {{ big }} {{ s|tojson }}",
                     vars),
              "3 3.0 True True 1.8446744073709552e+19 \"é\"");
}

}  // namespace
}  // namespace dsserve::chat::jinja
