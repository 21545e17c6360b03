// Renders every case of tests/golden/chat/jinja_*.json (made by tools/golden/make_jinja_golden.py
// with Python jinja2) and compares byte for byte. A null expectation means jinja2 raised, so the
// C++ renderer must throw Error.
#include <gtest/gtest.h>

#include "chat/jinja/template.h"
#include "chat/test_paths.h"
#include "core/error.h"
#include "core/file.h"
#include "core/json.h"

namespace dsserve::chat::jinja {
namespace {

Json load(const char* name) {
    return Json::parse(read_file(testing::golden_dir() + "/chat/" + name));
}

std::string template_source(const std::string& name) {
    const std::string data = testing::data_dir();
    const std::string suffix = "#chat_template";
    if (name.size() > suffix.size() && name.ends_with(suffix)) {
        const Json config =
            Json::parse(read_file(data + "/" + name.substr(0, name.size() - suffix.size())));
        return config["chat_template"].get<std::string>();
    }
    return read_file(data + "/" + name);
}

// Renders and returns the text, or nullopt with `error` set when rendering throws.
std::optional<std::string> try_render(const std::string& source, const Json& variables,
                                      std::string& error) {
    try {
        return Template(source).render(variables);
    } catch (const Error& e) {
        error = e.what();
        return std::nullopt;
    }
}

TEST(JinjaGolden, ChatTemplatesMatchPythonJinja) {
    const Json golden = load("jinja_templates.json");
    std::map<std::string, std::string> sources;
    size_t checked = 0;
    for (const auto& c : golden["cases"]) {
        const std::string name = c["template"];
        if (!sources.count(name)) {
            sources[name] = template_source(name);
        }
        const Json& conv = golden["conversations"][c["conversation"].get<std::string>()];
        Json variables = {{"bos_token", "<｜begin▁of▁sentence｜>"},
                          {"eos_token", "<｜end▁of▁sentence｜>"},
                          {"messages", conv["messages"]},
                          {"tools", conv.value("tools", Json())},
                          {"documents", nullptr}};
        for (const auto& [key, value] : c["options"].items()) {
            variables[key] = value;
        }
        std::string error;
        const auto got = try_render(sources[name], variables, error);
        const std::string where =
            name + " / " + c["conversation"].get<std::string>() + " / " + c["options"].dump();
        if (c["expected"].is_null()) {
            EXPECT_FALSE(got.has_value()) << where << ": jinja2 raised, dsserve rendered\n"
                                          << got.value_or("");
        } else {
            ASSERT_TRUE(got.has_value()) << where << ": " << error;
            EXPECT_EQ(*got, c["expected"].get<std::string>()) << where;
        }
        ++checked;
    }
    EXPECT_GT(checked, 500u);
}

TEST(JinjaGolden, SnippetsMatchPythonJinja) {
    const Json golden = load("jinja_snippets.json");
    for (const auto& c : golden["cases"]) {
        const std::string source = c["source"];
        std::string error;
        std::optional<std::string> got;
        try {
            got = Template(source).render(golden["variables"]);
        } catch (const Error& e) {
            error = e.what();
        }
        if (c["expected"].is_null()) {
            EXPECT_FALSE(got.has_value())
                << source << "\njinja2 raised, dsserve rendered: " << got.value_or("");
        } else {
            ASSERT_TRUE(got.has_value()) << source << "\nerror: " << error;
            EXPECT_EQ(*got, c["expected"].get<std::string>()) << source;
        }
    }
}

}  // namespace
}  // namespace dsserve::chat::jinja
