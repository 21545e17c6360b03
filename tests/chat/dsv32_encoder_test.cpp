#include "chat/dsv32_encoder.h"

#include <gtest/gtest.h>

#include "chat/chat_request.h"
#include "chat/test_paths.h"
#include "core/error.h"
#include "core/file.h"

namespace dsserve::chat {
namespace {

// A message dict as DeepSeek's encoder reads it (arguments as JSON strings).
ChatMessage message_from_json(const Json& m) {
    ChatMessage msg;
    const std::string role = m["role"];
    msg.role = role == "system"      ? Role::kSystem
               : role == "user"      ? Role::kUser
               : role == "assistant" ? Role::kAssistant
               : role == "tool"      ? Role::kTool
                                     : Role::kDeveloper;
    if (m.contains("content") && m["content"].is_string()) {
        msg.content = m["content"].get<std::string>();
    }
    if (m.contains("reasoning_content") && m["reasoning_content"].is_string()) {
        msg.reasoning_content = m["reasoning_content"].get<std::string>();
    }
    if (m.contains("tool_calls") && m["tool_calls"].is_array()) {
        for (const auto& tc : m["tool_calls"]) {
            ToolCall call;
            call.name = tc["function"]["name"];
            call.arguments = Json::parse(tc["function"]["arguments"].get<std::string>());
            msg.tool_calls.push_back(std::move(call));
        }
    }
    if (m.contains("tools")) {
        for (const auto& tool : m["tools"]) {
            msg.tools.push_back(tool);
        }
    }
    if (m.contains("response_format")) {
        msg.response_format = m["response_format"];
    }
    return msg;
}

std::vector<ChatMessage> messages_from_json(const Json& list) {
    std::vector<ChatMessage> out;
    for (const auto& m : list) {
        out.push_back(message_from_json(m));
    }
    return out;
}

std::string official_output(const std::string& name) {
    std::string text = read_file(testing::data_dir() + "/encoding/deepseek-v3.2/" + name);
    // The official test compares against the file with surrounding whitespace stripped.
    const auto first = text.find_first_not_of(" \n\r\t");
    const auto last = text.find_last_not_of(" \n\r\t");
    return text.substr(first, last - first + 1);
}

Dsv32Options official_options() {
    Dsv32Options options;
    options.mode = ThinkingMode::kThinking;
    options.drop_thinking = true;
    options.add_bos = true;
    return options;
}

TEST(Dsv32Encoder, OfficialVectorWithTools) {
    const Json input =
        Json::parse(read_file(testing::data_dir() + "/encoding/deepseek-v3.2/test_input.json"));
    auto messages = messages_from_json(input["messages"]);
    for (const auto& tool : input["tools"]) {
        messages[0].tools.push_back(tool);
    }
    EXPECT_EQ(encode_dsv32(messages, official_options()), official_output("test_output.txt"));
}

TEST(Dsv32Encoder, OfficialSearchVectorWithoutDate) {
    const Json input = Json::parse(
        read_file(testing::data_dir() + "/encoding/deepseek-v3.2/test_input_search_wo_date.json"));
    EXPECT_EQ(encode_dsv32(messages_from_json(input["messages"]), official_options()),
              official_output("test_output_search_wo_date.txt"));
}

TEST(Dsv32Encoder, OfficialSearchVectorWithDate) {
    const Json input = Json::parse(
        read_file(testing::data_dir() + "/encoding/deepseek-v3.2/test_input_search_w_date.json"));
    EXPECT_EQ(encode_dsv32(messages_from_json(input["messages"]), official_options()),
              official_output("test_output_search_w_date.txt"));
}

// The official test also encodes one message with the ones before it as context.
TEST(Dsv32Encoder, ContextMessagesAreNotRendered) {
    const Json input =
        Json::parse(read_file(testing::data_dir() + "/encoding/deepseek-v3.2/test_input.json"));
    auto messages = messages_from_json(input["messages"]);
    messages.resize(5);
    Dsv32Options options = official_options();
    options.num_context_messages = 4;
    const std::string suffix = encode_dsv32(messages, options);
    // The message is after the last user turn, so it keeps its reasoning.
    const std::string reasoning = input["messages"][4]["reasoning_content"];
    EXPECT_EQ(suffix.rfind(reasoning + "</think>\n\n<｜DSML｜function_calls>", 0), 0u) << suffix;
    EXPECT_TRUE(suffix.ends_with("</｜DSML｜function_calls><｜end▁of▁sentence｜>"));
    options.num_context_messages = 0;
    EXPECT_TRUE(encode_dsv32(messages, options).ends_with(suffix));
}

TEST(Dsv32Encoder, MatchesReferenceEncoderGoldens) {
    const Json golden = Json::parse(read_file(testing::golden_dir() + "/chat/dsv32_encoder.json"));
    size_t errors = 0;
    for (const auto& c : golden["cases"]) {
        Dsv32Options options;
        options.mode = c["mode"] == "thinking" ? ThinkingMode::kThinking : ThinkingMode::kChat;
        options.drop_thinking = c["drop_thinking"].get<bool>();
        const auto messages = messages_from_json(c["messages"]);
        const std::string where =
            c["conversation"].get<std::string>() + " " + c["mode"].get<std::string>();
        if (c["conversation"] == "dropped_developer" && options.mode == ThinkingMode::kThinking &&
            options.drop_thinking) {
            // The reference drops the early developer message and then indexes past the end of
            // the shortened list; dsserve renders the shortened list (docs/chat-encoding.md).
            EXPECT_TRUE(c["expected"].is_null());
            EXPECT_EQ(encode_dsv32(messages, options),
                      "<｜begin▁of▁sentence｜>ok<｜end▁of▁sentence｜><｜User｜>Now "
                      "this<｜Assistant｜><think>");
            continue;
        }
        if (c["expected"].is_null()) {
            EXPECT_THROW(encode_dsv32(messages, options), Error) << where;
            ++errors;
        } else {
            EXPECT_EQ(encode_dsv32(messages, options), c["expected"].get<std::string>()) << where;
        }
    }
    EXPECT_GE(errors, 3u);
}

TEST(Dsv32Encoder, ChatModeClosesThinkingAfterUser) {
    std::vector<ChatMessage> messages(1);
    messages[0].role = Role::kUser;
    messages[0].content = "hi";
    Dsv32Options options;
    EXPECT_EQ(encode_dsv32(messages, options),
              "<｜begin▁of▁sentence｜><｜User｜>hi<｜Assistant｜></think>");
    options.mode = ThinkingMode::kThinking;
    options.add_bos = false;
    EXPECT_EQ(encode_dsv32(messages, options), "<｜User｜>hi<｜Assistant｜><think>");
}

TEST(Dsv32Encoder, ArgumentsKeepTypesAndOrder) {
    std::vector<ChatMessage> messages(2);
    messages[0].role = Role::kUser;
    messages[0].content = "x";
    messages[1].role = Role::kAssistant;
    messages[1].content = "";
    ToolCall call;
    call.name = "f";
    call.arguments = Json::parse(R"({"z": "raw \"text\"", "a": 1.0, "m": [1, "é"], "n": null})");
    messages[1].tool_calls.push_back(call);
    const std::string prompt = encode_dsv32(messages, Dsv32Options{});
    EXPECT_NE(prompt.find(
                  "<｜DSML｜parameter name=\"z\" string=\"true\">raw \"text\"</｜DSML｜parameter>\n"
                  "<｜DSML｜parameter name=\"a\" string=\"false\">1.0</｜DSML｜parameter>\n"
                  "<｜DSML｜parameter name=\"m\" string=\"false\">[1, \"é\"]</｜DSML｜parameter>\n"
                  "<｜DSML｜parameter name=\"n\" string=\"false\">null</｜DSML｜parameter>"),
              std::string::npos)
        << prompt;
}

TEST(Dsv32Encoder, RejectsMoreResultsThanCalls) {
    std::vector<ChatMessage> messages(4);
    messages[0].role = Role::kUser;
    messages[0].content = "x";
    messages[1].role = Role::kAssistant;
    messages[1].tool_calls.push_back(ToolCall{std::nullopt, "f", Json::object()});
    messages[2].role = Role::kTool;
    messages[2].content = "one";
    messages[3].role = Role::kTool;
    messages[3].content = "two";
    EXPECT_THROW(encode_dsv32(messages, Dsv32Options{}), Error);
    messages.pop_back();
    EXPECT_NO_THROW(encode_dsv32(messages, Dsv32Options{}));
}

}  // namespace
}  // namespace dsserve::chat
