#include "chat/dsv32_encoder.h"

#include <optional>
#include <vector>

#include "chat/chat_request.h"
#include "core/error.h"
#include "core/pyjson.h"

namespace dsserve::chat {
namespace {

constexpr std::string_view kDsml = "｜DSML｜";

// The reference template text (TOOLS_SYSTEM_TEMPLATE) with its placeholders already filled in;
// the tool schema lines go between the two halves.
constexpr std::string_view kToolsHead =
    "## Tools\n"
    "\n"
    "You have access to a set of tools you can use to answer the user's question.\n"
    "You can invoke functions by writing a \"<｜DSML｜function_calls>\" block like the following "
    "as part of your reply to the user:\n"
    "<｜DSML｜function_calls>\n"
    "<｜DSML｜invoke name=\"$FUNCTION_NAME\">\n"
    "<｜DSML｜parameter name=\"$PARAMETER_NAME\" string=\"true|false\">$PARAMETER_VALUE</"
    "｜DSML｜parameter>\n"
    "...\n"
    "</｜DSML｜invoke>\n"
    "<｜DSML｜invoke name=\"$FUNCTION_NAME2\">\n"
    "...\n"
    "</｜DSML｜invoke>\n"
    "</｜DSML｜function_calls>\n"
    "\n"
    "String and scalar parameters should be specified as is without any escaping or quotes, "
    "while lists and objects should use JSON format. The \"string\" attribute should be set to "
    "\"true\" for string type parameters and \"false\" for other types (numbers, booleans, "
    "arrays, objects).\n"
    "\n"
    "If the thinking_mode is enabled, then after function results you should strongly consider "
    "outputting a thinking block. Here is an example:\n"
    "\n"
    "<｜DSML｜function_calls>\n"
    "...\n"
    "</｜DSML｜function_calls>\n"
    "\n"
    "<function_results>\n"
    "...\n"
    "</function_results>\n"
    "\n"
    "<think>...thinking about results</think>\n"
    "\n"
    "Here are the functions available in JSONSchema format:\n"
    "<functions>\n";
constexpr std::string_view kToolsTail = "\n</functions>\n";

constexpr std::string_view kResponseFormatHead =
    "## Response Format:\n\nYou MUST strictly adhere to the following schema to reply:\n";

// str.format of an optional string: Python prints None as "None".
std::string py_str(const std::optional<std::string>& text) {
    return text ? *text : "None";
}

std::string to_json(const Json& value) {
    return py_json_dumps(value);
}

std::string render_arguments(const ToolCall& call) {
    DS_CHECK(call.arguments.is_object(), "tool call '", call.name,
             "': arguments must be a JSON object");
    std::string out;
    bool first = true;
    for (const auto& [key, value] : call.arguments.items()) {
        if (!first) {
            out += '\n';
        }
        first = false;
        const bool is_string = value.is_string();
        out += str_cat("<", kDsml, "parameter name=\"", key, "\" string=\"",
                       is_string ? "true" : "false", "\">");
        out += is_string ? value.get_ref<const std::string&>() : to_json(value);
        out += str_cat("</", kDsml, "parameter>");
    }
    return out;
}

std::string render_tool_calls(const std::vector<ToolCall>& calls) {
    std::string out = str_cat("\n\n<", kDsml, "function_calls>\n");
    bool first = true;
    for (const auto& call : calls) {
        if (!first) {
            out += '\n';
        }
        first = false;
        out += str_cat("<", kDsml, "invoke name=\"", call.name, "\">\n", render_arguments(call),
                       "\n</", kDsml, "invoke>");
    }
    out += str_cat("\n</", kDsml, "function_calls>");
    return out;
}

std::string render_response_format(const Json& response_format) {
    return str_cat(kResponseFormatHead, to_json(response_format));
}

bool is_user_like(Role role) {
    return role == Role::kUser || role == Role::kDeveloper;
}

std::optional<size_t> find_last_user(const std::vector<const ChatMessage*>& messages) {
    for (size_t i = messages.size(); i-- > 0;) {
        if (is_user_like(messages[i]->role)) {
            return i;
        }
    }
    return std::nullopt;
}

class Renderer {
public:
    Renderer(const std::vector<const ChatMessage*>& messages, ThinkingMode mode)
        : messages_(messages), mode_(mode), last_user_(find_last_user(messages)) {}

    void render(size_t index, std::string& out) const {
        const ChatMessage& msg = *messages_[index];
        switch (msg.role) {
            case Role::kSystem:
                render_system(msg, out);
                return;
            case Role::kDeveloper:
                render_developer(index, msg, out);
                return;
            case Role::kUser:
                out += str_cat("<｜User｜>", py_str(msg.content), "<｜Assistant｜>");
                out += opens_thinking(index) ? kThinkStart : kThinkEnd;
                return;
            case Role::kTool:
                render_tool(index, msg, out);
                return;
            case Role::kAssistant:
                render_assistant(index, msg, out);
                return;
        }
    }

private:
    bool thinking() const { return mode_ == ThinkingMode::kThinking; }
    bool opens_thinking(size_t index) const {
        return thinking() && last_user_ && index == *last_user_;
    }
    // "index > last_user_idx" with the reference's -1 for "no user message".
    bool after_last_user(size_t index) const { return !last_user_ || index > *last_user_; }

    // The sections a system or developer message adds after its text, in the reference's order.
    static void append_tools_and_format(const ChatMessage& msg, std::string& out) {
        if (!msg.tools.empty()) {
            out += "\n\n";
            out += render_dsv32_tools(msg.tools);
        }
        // The reference tests the field's Python truthiness, so an empty schema adds nothing.
        if (json_truthy(msg.response_format)) {
            out += "\n\n";
            out += render_response_format(msg.response_format);
        }
    }

    static void render_system(const ChatMessage& msg, std::string& out) {
        out += msg.content.value_or("");
        append_tools_and_format(msg, out);
    }

    void render_developer(size_t index, const ChatMessage& msg, std::string& out) const {
        DS_CHECK(msg.content && !msg.content->empty(), "message ", index,
                 ": a developer message needs non-empty content");
        std::string body;
        append_tools_and_format(msg, body);
        body += str_cat("\n\n# The user's message is: ", *msg.content);
        out += str_cat("<｜User｜>", body, "<｜Assistant｜>");
        out += opens_thinking(index) ? kThinkStart : kThinkEnd;
    }

    void render_tool(size_t index, const ChatMessage& msg, std::string& out) const {
        // Results answer the calls of the nearest assistant turn before them, by position.
        size_t first_result = index;
        while (first_result > 0 && messages_[first_result - 1]->role == Role::kTool) {
            --first_result;
        }
        DS_CHECK(first_result > 0 && messages_[first_result - 1]->role == Role::kAssistant,
                 "message ", index, ": a tool result must follow an assistant message");
        const ChatMessage& assistant = *messages_[first_result - 1];
        const size_t order = index - first_result + 1;
        DS_CHECK(order <= assistant.tool_calls.size(), "message ", index, ": tool result ", order,
                 " but the assistant message before it made ", assistant.tool_calls.size(),
                 " tool calls");
        if (order == 1) {
            out += "\n\n<function_results>";
        }
        out += str_cat("\n<result>", py_str(msg.content), "</result>");
        if (order == assistant.tool_calls.size()) {
            out += "\n</function_results>";
            const bool at_or_after_last_user = !last_user_ || index >= *last_user_;
            out += "\n\n";
            out += thinking() && at_or_after_last_user ? kThinkStart : kThinkEnd;
        }
    }

    void render_assistant(size_t index, const ChatMessage& msg, std::string& out) const {
        if (thinking() && after_last_user(index)) {
            const bool has_reasoning = msg.reasoning_content && !msg.reasoning_content->empty();
            DS_CHECK(has_reasoning || !msg.tool_calls.empty(), "message ", index,
                     ": in thinking mode an assistant message after the last user message needs "
                     "reasoning_content or tool_calls");
            out += msg.reasoning_content.value_or("");
            out += kThinkEnd;
        }
        out += msg.content.value_or("");
        if (!msg.tool_calls.empty()) {
            out += render_tool_calls(msg.tool_calls);
        }
        out += kDsv32Eos;
    }

    const std::vector<const ChatMessage*>& messages_;
    ThinkingMode mode_;
    std::optional<size_t> last_user_;
};

}  // namespace

std::string render_dsv32_tools(std::span<const Json> tools) {
    std::string out(kToolsHead);
    bool first = true;
    for (const Json& tool : tools) {
        DS_CHECK(tool.is_object() && tool.contains("function"),
                 "each tool must be an object with a \"function\" member");
        if (!first) {
            out += '\n';
        }
        first = false;
        out += to_json(tool["function"]);
    }
    out += kToolsTail;
    return out;
}

std::string encode_dsv32(std::span<const ChatMessage> messages, const Dsv32Options& options) {
    DS_CHECK(options.num_context_messages <= messages.size(),
             "more context messages than messages");
    // The list the renderer sees, with each entry's position in `messages`.
    std::vector<const ChatMessage*> full;
    std::vector<size_t> original_index;
    std::vector<ChatMessage> without_reasoning;  // copies whose reasoning was dropped
    without_reasoning.reserve(messages.size());
    const bool drop = options.mode == ThinkingMode::kThinking && options.drop_thinking;
    std::optional<size_t> last_user;
    for (size_t i = messages.size(); i-- > 0;) {
        if (is_user_like(messages[i].role)) {
            last_user = i;
            break;
        }
    }
    for (size_t i = 0; i < messages.size(); ++i) {
        const ChatMessage& msg = messages[i];
        // The reference keeps user, system and tool messages and everything from the last user
        // message on; earlier assistant turns lose their reasoning and earlier developer
        // messages are dropped altogether. With no user message nothing is "earlier".
        const bool keep_as_is = !drop || !last_user || i >= *last_user || msg.role == Role::kUser ||
                                msg.role == Role::kSystem || msg.role == Role::kTool;
        if (keep_as_is) {
            full.push_back(&msg);
        } else if (msg.role == Role::kAssistant) {
            without_reasoning.push_back(msg);
            without_reasoning.back().reasoning_content.reset();
            full.push_back(&without_reasoning.back());
        } else {
            continue;
        }
        original_index.push_back(i);
    }
    std::string prompt;
    if (options.add_bos && options.num_context_messages == 0) {
        prompt += kDsv32Bos;
    }
    const Renderer renderer(full, options.mode);
    for (size_t k = 0; k < full.size(); ++k) {
        if (original_index[k] >= options.num_context_messages) {
            renderer.render(k, prompt);
        }
    }
    return prompt;
}

std::string_view role_name(Role role) {
    switch (role) {
        case Role::kSystem:
            return "system";
        case Role::kUser:
            return "user";
        case Role::kAssistant:
            return "assistant";
        case Role::kTool:
            return "tool";
        case Role::kDeveloper:
            return "developer";
    }
    return "unknown";
}

}  // namespace dsserve::chat
