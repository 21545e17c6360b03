#include "chat/chat_template.h"

#include <gtest/gtest.h>

#include "chat/test_paths.h"
#include "core/file.h"

namespace dsserve::chat {
namespace {

Json load_json(const std::string& path) {
    return Json::parse(read_file(path));
}

Json v32_config() {
    return load_json(testing::data_dir() + "/tokenizer/deepseek-v3.2/tokenizer_config.json");
}

// Requests prepared and rendered by the Python oracles (tools/golden/make_jinja_golden.py).
TEST(ChatPromptBuilder, RequestsMatchGoldens) {
    const Json golden = load_json(testing::golden_dir() + "/chat/chat_requests.json");
    const ChatPromptBuilder encoder(v32_config(), std::nullopt);
    ASSERT_FALSE(encoder.uses_jinja());
    for (const auto& c : golden["cases"]) {
        const ChatRequest request = parse_chat_request(c["request"]);
        const std::string name = c["name"];
        EXPECT_EQ(encoder.build(request), c["expected_dsv32"].get<std::string>()) << name;
        const ChatPromptBuilder jinja(
            v32_config(),
            read_file(testing::data_dir() + "/" + c["jinja_template"].get<std::string>()));
        ASSERT_TRUE(jinja.uses_jinja());
        EXPECT_EQ(jinja.build(request), c["expected_jinja"].get<std::string>()) << name;
    }
}

TEST(ChatPromptBuilder, TokenizerTemplateIsUsedWhenPresent) {
    const Json v3 =
        load_json(testing::data_dir() + "/tokenizer/deepseek-v3.2/tokenizer_config.v3.json");
    const ChatPromptBuilder builder(v3, std::nullopt);
    ASSERT_TRUE(builder.uses_jinja());
    const ChatRequest request = parse_chat_request(Json::parse(
        R"({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]})"));
    EXPECT_EQ(builder.build(request), "<｜begin▁of▁sentence｜>S<｜User｜>U<｜Assistant｜>");
}

}  // namespace
}  // namespace dsserve::chat
