// A chat conversation in native form: what the OpenAI request carries once validated, and what the
// prompt encoders read. JSON stays only where the content is free-form JSON itself (tool schemas,
// tool-call arguments, response formats).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"

namespace dsserve::chat {

enum class Role { kSystem, kUser, kAssistant, kTool, kDeveloper };

std::string_view role_name(Role role);

struct ToolCall {
    std::optional<std::string> id;
    std::string name;
    // The call's arguments as a JSON object, key order as the client sent it.
    Json arguments = Json::object();
};

struct ChatMessage {
    Role role = Role::kUser;
    // nullopt is JSON null (the client sent no text, e.g. an assistant turn with only tool calls).
    std::optional<std::string> content;
    std::optional<std::string> reasoning_content;
    std::vector<ToolCall> tool_calls;
    std::optional<std::string> tool_call_id;
    std::optional<std::string> name;
    // OpenAI tool objects ({"type": "function", "function": {...}}) offered in this message; the
    // V3.2 encoder renders them for system and developer messages. Empty: none.
    std::vector<Json> tools;
    // A schema the reply must follow (V3.2 encoder, system and developer messages); null: none.
    Json response_format;
};

}  // namespace dsserve::chat
