#include "chat/chat_request.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace dsserve::chat {
namespace {

std::string error_of(const std::string& body) {
    try {
        parse_chat_request(Json::parse(body));
    } catch (const Error& e) {
        return e.what();
    }
    return "<no error>";
}

TEST(ChatRequest, ErrorsNameTheField) {
    EXPECT_EQ(error_of(R"({"messages": []})"), "Messages cannot be empty.");
    EXPECT_EQ(error_of(R"({})"), "messages: is required");
    EXPECT_EQ(error_of(R"({"messages": [{"role": "user", "content": "a"}, {"content": "b"}]})"),
              "messages[1].role: is required");
    EXPECT_EQ(error_of(R"({"messages": [{"role": "robot", "content": "a"}]})"),
              "messages[0].role: must be one of 'system', 'user', 'assistant', 'tool', "
              "'developer' (case-insensitive), got 'robot'");
    EXPECT_EQ(error_of(R"({"messages": [{"role": "user", "content": 5}]})"),
              "messages[0].content: must be a string, an array of content parts or null, got a "
              "number");
    EXPECT_EQ(error_of(R"({"messages": [{"role": "assistant", "tool_calls": [{"function":
                 {"name": "f", "arguments": "[1]"}}]}]})"),
              "messages[0].tool_calls[0].function.arguments: must be a JSON object");
    EXPECT_EQ(error_of(R"({"messages": [{"role": "assistant", "tool_calls": [{"function":
                 {"name": "f", "arguments": "{bad"}}]}]})"),
              "messages[0].tool_calls[0].function.arguments: must be valid JSON");
    EXPECT_EQ(error_of(R"({"messages": [{"role": "user", "content": "a"}], "tools": [{}]})"),
              "tools[0].function: is required");
    EXPECT_EQ(error_of(R"({"messages": [{"role": "user", "content": "a"}],
                          "reasoning_effort": "extreme"})"),
              "reasoning_effort: must be one of 'none', 'minimal', 'low', 'medium', 'high', "
              "'xhigh', 'max' or a number in [0, 0.99], got 'extreme'");
    EXPECT_EQ(
        error_of(R"({"messages": [{"role": "user", "content": "a"}], "tool_choice": "required"})"),
        "Tools cannot be empty if tool choice is set to required.");
    EXPECT_EQ(error_of(R"({"messages": [{"role": "user", "content": "a"}],
                          "chat_template_kwargs": []})"),
              "chat_template_kwargs: must be an object, got an array");
}

TEST(ChatRequest, ParsesContentPartsAndRoles) {
    const ChatRequest r = parse_chat_request(Json::parse(R"({"messages": [
        {"role": "SYSTEM", "content": null},
        {"role": "user", "content": [{"type": "text", "text": "a"},
                                     {"type": "image_url", "image_url": {"url": "x"}},
                                     {"type": "text", "text": "b"}]},
        {"role": "assistant", "reasoning_content": "r", "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{\"k\": 1.5}"}}]},
        {"role": "tool", "tool_call_id": "c", "content": "out"}]})"));
    ASSERT_EQ(r.messages.size(), 4u);
    EXPECT_EQ(r.messages[0].role, Role::kSystem);
    EXPECT_FALSE(r.messages[0].content.has_value());
    EXPECT_EQ(r.messages[1].content, "a b");
    EXPECT_EQ(r.messages[2].tool_calls.at(0).arguments.dump(), R"({"k":1.5})");
    EXPECT_EQ(r.messages[2].reasoning_content, "r");
    EXPECT_EQ(r.messages[3].tool_call_id, "c");
}

TEST(ChatRequest, ThinkingFollowsKwargsAndReasoningEffort) {
    const auto thinking = [](const std::string& extra) {
        return thinking_enabled(parse_chat_request(
            Json::parse(R"({"messages": [{"role": "user", "content": "a"}])" + extra + "}")));
    };
    EXPECT_FALSE(thinking(""));
    EXPECT_TRUE(thinking(R"(, "chat_template_kwargs": {"thinking": true})"));
    EXPECT_TRUE(thinking(R"(, "reasoning_effort": "low")"));
    EXPECT_FALSE(thinking(R"(, "reasoning_effort": "none")"));
    EXPECT_TRUE(thinking(R"(, "reasoning_effort": 0.5)"));
    EXPECT_FALSE(
        thinking(R"(, "reasoning_effort": "high", "chat_template_kwargs": {"thinking": false})"));
    EXPECT_TRUE(thinking(R"(, "reasoning": {"enabled": true})"));
    // A reasoning_effort inside the kwargs moves to the request field without switching thinking.
    const ChatRequest r = parse_chat_request(Json::parse(
        R"({"messages": [{"role": "user", "content": "a"}], "chat_template_kwargs": {"reasoning_effort": "max"}})"));
    EXPECT_FALSE(thinking_enabled(r));
    EXPECT_EQ(r.reasoning_effort, "max");
    EXPECT_FALSE(r.chat_template_kwargs.contains("reasoning_effort"));
}

TEST(ChatRequest, Dsv32PromptInsertsSystemAndAttachesTools) {
    const ChatRequest r = parse_chat_request(Json::parse(R"({
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]})"));
    const std::string prompt = build_dsv32_prompt(r);
    EXPECT_EQ(prompt.rfind("<｜begin▁of▁sentence｜>\n\n## Tools\n", 0), 0u) << prompt;
    EXPECT_NE(prompt.find("<functions>\n{\"name\": \"f\", \"parameters\": {}}\n</functions>\n"
                          "<｜User｜>hi<｜Assistant｜></think>"),
              std::string::npos)
        << prompt;
}

TEST(ChatRequest, TrailingAssistantBecomesUserOrPrefix) {
    const std::string body = R"({"messages": [{"role": "user", "content": "a"},
                                             {"role": "assistant", "content": "b"}])";
    EXPECT_EQ(build_dsv32_prompt(parse_chat_request(Json::parse(body + "}"))),
              "<｜begin▁of▁sentence｜><｜User｜>a<｜Assistant｜></"
              "think><｜User｜>b<｜Assistant｜></think>");
    EXPECT_EQ(build_dsv32_prompt(
                  parse_chat_request(Json::parse(body + R"(, "continue_final_message": true})"))),
              "<｜begin▁of▁sentence｜><｜User｜>a<｜Assistant｜></think>b");
}

TEST(ChatRequest, JinjaVariablesFollowSglang) {
    const ChatRequest r = parse_chat_request(Json::parse(R"({
        "messages": [{"role": "user", "content": "hi", "name": "ignored"},
                     {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "c", "function": {"name": "g", "arguments": "{\"a\": 1}"}}]},
                     {"role": "tool", "tool_call_id": "c", "content": "r"}],
        "tools": [{"type": "function", "function": {"name": "f"}},
                  {"type": "function", "function": {"name": "g"}}],
        "tool_choice": {"type": "function", "function": {"name": "g"}},
        "reasoning_effort": "low", "chat_template_kwargs": {"x": 1}})"));
    std::optional<std::string> prefix;
    const Json v = jinja_variables(r, &prefix);
    EXPECT_FALSE(prefix.has_value());
    EXPECT_EQ(
        v["messages"].dump(),
        R"([{"role":"user","content":"hi"},{"role":"assistant","content":"","tool_calls":)"
        R"([{"id":"c","index":null,"type":"function","function":{"name":"g","arguments":{"a":1}}}]},)"
        R"({"role":"tool","content":"r","tool_call_id":"c"}])");
    EXPECT_EQ(v["tools"].size(), 1u);
    EXPECT_EQ(v["tools"][0]["function"]["name"], "g");
    EXPECT_EQ(v["reasoning_effort"], "low");
    EXPECT_EQ(v["thinking"], true);
    EXPECT_EQ(v["x"], 1);
    EXPECT_EQ(v["add_generation_prompt"], true);
}

}  // namespace
}  // namespace dsserve::chat
