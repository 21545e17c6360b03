#include "chat/chat_request.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "core/error.h"

namespace dsserve::chat {
namespace {

std::string type_name(const Json& value) {
    switch (value.type()) {
        case Json::value_t::null:
            return "null";
        case Json::value_t::boolean:
            return "a boolean";
        case Json::value_t::number_integer:
        case Json::value_t::number_unsigned:
        case Json::value_t::number_float:
            return "a number";
        case Json::value_t::string:
            return "a string";
        case Json::value_t::array:
            return "an array";
        case Json::value_t::object:
            return "an object";
        default:
            return "an unsupported value";
    }
}

[[noreturn]] void bad_field(const std::string& path, const std::string& what) {
    fail(path, ": ", what);
}

void expect_type(const Json& value, Json::value_t type, const std::string& path,
                 const char* wanted) {
    if (value.type() != type) {
        bad_field(path, str_cat("must be ", wanted, ", got ", type_name(value)));
    }
}

const Json* member(const Json& object, const char* key) {
    const auto it = object.find(key);
    return it == object.end() || it->is_null() ? nullptr : &*it;
}

std::optional<std::string> optional_string(const Json& object, const char* key,
                                           const std::string& path) {
    const Json* value = member(object, key);
    if (value == nullptr) {
        return std::nullopt;
    }
    expect_type(*value, Json::value_t::string, str_cat(path, ".", key), "a string");
    return value->get<std::string>();
}

bool optional_bool(const Json& object, const char* key, bool fallback) {
    const Json* value = member(object, key);
    if (value == nullptr) {
        return fallback;
    }
    expect_type(*value, Json::value_t::boolean, key, "a boolean");
    return value->get<bool>();
}

Role parse_role(const Json& value, const std::string& path) {
    expect_type(value, Json::value_t::string, path, "a string");
    std::string role = value.get<std::string>();
    std::transform(role.begin(), role.end(), role.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (role == "system") {
        return Role::kSystem;
    }
    if (role == "user") {
        return Role::kUser;
    }
    if (role == "assistant") {
        return Role::kAssistant;
    }
    if (role == "tool") {
        return Role::kTool;
    }
    if (role == "developer") {
        return Role::kDeveloper;
    }
    bad_field(path, str_cat("must be one of 'system', 'user', 'assistant', 'tool', 'developer' "
                            "(case-insensitive), got '",
                            value.get<std::string>(), "'"));
}

// Content is a string, null, or a list of parts whose text parts are joined with " " (SGLang's
// flattening for text-only prompt builders; image, video and audio parts add no text).
std::optional<std::string> parse_content(const Json& message, const std::string& path) {
    const Json* content = member(message, "content");
    if (content == nullptr) {
        return std::nullopt;
    }
    const std::string content_path = path + ".content";
    if (content->is_string()) {
        return content->get<std::string>();
    }
    if (!content->is_array()) {
        bad_field(content_path, str_cat("must be a string, an array of content parts or null, got ",
                                        type_name(*content)));
    }
    std::string text;
    bool any = false;
    for (size_t i = 0; i < content->size(); ++i) {
        const Json& part = (*content)[i];
        const std::string part_path = str_cat(content_path, "[", i, "]");
        expect_type(part, Json::value_t::object, part_path, "an object");
        const Json* type = member(part, "type");
        if (type == nullptr) {
            bad_field(part_path + ".type", "is required");
        }
        expect_type(*type, Json::value_t::string, part_path + ".type", "a string");
        const std::string& kind = type->get_ref<const std::string&>();
        if (kind == "text" || kind == "input_text") {
            const Json* part_text = member(part, "text");
            if (part_text == nullptr) {
                bad_field(part_path + ".text", "is required");
            }
            expect_type(*part_text, Json::value_t::string, part_path + ".text", "a string");
            if (any) {
                text += ' ';
            }
            text += part_text->get<std::string>();
            any = true;
        } else if (kind != "image_url" && kind != "input_image" && kind != "video_url" &&
                   kind != "audio_url") {
            bad_field(part_path + ".type", str_cat("unsupported content part type '", kind, "'"));
        }
    }
    return text;
}

Json parse_arguments(const Json& arguments, const std::string& path) {
    if (arguments.is_object()) {
        return arguments;
    }
    expect_type(arguments, Json::value_t::string, path, "a JSON object string");
    Json parsed = Json::parse(arguments.get_ref<const std::string&>(), nullptr, false);
    if (parsed.is_discarded()) {
        bad_field(path, "must be valid JSON");
    }
    if (!parsed.is_object()) {
        bad_field(path, "must be a JSON object");
    }
    return parsed;
}

std::vector<ToolCall> parse_tool_calls(const Json& message, const std::string& path) {
    std::vector<ToolCall> calls;
    const Json* list = member(message, "tool_calls");
    if (list == nullptr) {
        return calls;
    }
    expect_type(*list, Json::value_t::array, path + ".tool_calls", "an array");
    for (size_t i = 0; i < list->size(); ++i) {
        const Json& item = (*list)[i];
        const std::string item_path = str_cat(path, ".tool_calls[", i, "]");
        expect_type(item, Json::value_t::object, item_path, "an object");
        ToolCall call;
        call.id = optional_string(item, "id", item_path);
        const Json* function = member(item, "function");
        if (function == nullptr) {
            bad_field(item_path + ".function", "is required");
        }
        expect_type(*function, Json::value_t::object, item_path + ".function", "an object");
        const auto name = optional_string(*function, "name", item_path + ".function");
        if (!name) {
            bad_field(item_path + ".function.name", "is required");
        }
        call.name = *name;
        const Json* arguments = member(*function, "arguments");
        call.arguments = arguments == nullptr
                             ? Json::object()
                             : parse_arguments(*arguments, item_path + ".function.arguments");
        calls.push_back(std::move(call));
    }
    return calls;
}

std::vector<Json> parse_tools(const Json& list, const std::string& path) {
    expect_type(list, Json::value_t::array, path, "an array");
    std::vector<Json> tools;
    for (size_t i = 0; i < list.size(); ++i) {
        const Json& tool = list[i];
        const std::string tool_path = str_cat(path, "[", i, "]");
        expect_type(tool, Json::value_t::object, tool_path, "an object");
        if (const Json* type = member(tool, "type")) {
            expect_type(*type, Json::value_t::string, tool_path + ".type", "a string");
        }
        const Json* function = member(tool, "function");
        if (function == nullptr) {
            bad_field(tool_path + ".function", "is required");
        }
        expect_type(*function, Json::value_t::object, tool_path + ".function", "an object");
        if (!optional_string(*function, "name", tool_path + ".function")) {
            bad_field(tool_path + ".function.name", "is required");
        }
        optional_string(*function, "description", tool_path + ".function");
        if (const Json* strict = member(*function, "strict")) {
            expect_type(*strict, Json::value_t::boolean, tool_path + ".function.strict",
                        "a boolean");
        }
        tools.push_back(tool);
    }
    return tools;
}

ChatMessage parse_message(const Json& item, const std::string& path) {
    expect_type(item, Json::value_t::object, path, "an object");
    ChatMessage msg;
    const Json* role = member(item, "role");
    if (role == nullptr) {
        bad_field(path + ".role", "is required");
    }
    msg.role = parse_role(*role, path + ".role");
    msg.content = parse_content(item, path);
    // SGLang's user-message model has only role and content; other members are ignored there.
    if (msg.role == Role::kUser) {
        return msg;
    }
    msg.reasoning_content = optional_string(item, "reasoning_content", path);
    msg.tool_call_id = optional_string(item, "tool_call_id", path);
    msg.name = optional_string(item, "name", path);
    msg.tool_calls = parse_tool_calls(item, path);
    if (const Json* tools = member(item, "tools")) {
        msg.tools = parse_tools(*tools, path + ".tools");
    }
    return msg;
}

constexpr std::array<const char*, 7> kEffortTiers = {"none", "minimal", "low", "medium",
                                                     "high", "xhigh",   "max"};

bool is_effort_tier(const std::string& text) {
    return std::find(kEffortTiers.begin(), kEffortTiers.end(), text) != kEffortTiers.end();
}

Json parse_effort(const Json& value, const std::string& path) {
    if (value.is_string()) {
        const auto& text = value.get_ref<const std::string&>();
        if (!is_effort_tier(text)) {
            bad_field(path, str_cat("must be one of 'none', 'minimal', 'low', 'medium', 'high', "
                                    "'xhigh', 'max' or a number in [0, 0.99], got '",
                                    text, "'"));
        }
        return value;
    }
    if (value.is_number()) {
        const double number = value.get<double>();
        if (!(number >= 0.0 && number <= 0.99)) {
            bad_field(path, "must be in [0, 0.99]");
        }
        return value;
    }
    bad_field(path, str_cat("must be a string or a number, got ", type_name(value)));
}

void validate_tool_choice(const ChatRequest& request) {
    const Json& choice = request.tool_choice;
    if (choice.is_null()) {
        return;
    }
    if (choice.is_string()) {
        const auto& text = choice.get_ref<const std::string&>();
        if (text != "none" && text != "auto" && text != "required") {
            bad_field("tool_choice", "must be 'none', 'auto', 'required' or a function object");
        }
        DS_CHECK(text != "required" || !request.tools.empty(),
                 "Tools cannot be empty if tool choice is set to required.");
        return;
    }
    expect_type(choice, Json::value_t::object, "tool_choice", "a string or an object");
    const Json* function = member(choice, "function");
    if (function == nullptr || !function->is_object()) {
        bad_field("tool_choice.function", "must be an object");
    }
    const auto name = optional_string(*function, "name", "tool_choice.function");
    DS_CHECK(!request.tools.empty(),
             "Tools cannot be empty if tool choice is set to a specific tool.");
    const bool found = std::any_of(request.tools.begin(), request.tools.end(), [&](const Json& t) {
        return t["function"].value("name", std::string()) == name.value_or("");
    });
    DS_CHECK(found, "Tool '", name.value_or(""), "' not found in tools list.");
}

std::optional<std::string> named_tool_choice(const ChatRequest& request) {
    if (request.tool_choice.is_object()) {
        return request.tool_choice["function"].value("name", std::string());
    }
    return std::nullopt;
}

}  // namespace

bool json_truthy(const Json& value) {
    switch (value.type()) {
        case Json::value_t::null:
            return false;
        case Json::value_t::boolean:
            return value.get<bool>();
        case Json::value_t::number_integer:
            return value.get<std::int64_t>() != 0;
        case Json::value_t::number_unsigned:
            return value.get<std::uint64_t>() != 0;
        case Json::value_t::number_float:
            return value.get<double>() != 0.0;
        case Json::value_t::string:
        case Json::value_t::array:
        case Json::value_t::object:
            return !value.empty();
        default:
            return true;
    }
}

ChatRequest parse_chat_request(const Json& body) {
    DS_CHECK(body.is_object(), "request body must be a JSON object");
    ChatRequest request;
    const Json* messages = member(body, "messages");
    if (messages == nullptr) {
        bad_field("messages", "is required");
    }
    expect_type(*messages, Json::value_t::array, "messages", "an array");
    DS_CHECK(!messages->empty(), "Messages cannot be empty.");
    for (size_t i = 0; i < messages->size(); ++i) {
        request.messages.push_back(parse_message((*messages)[i], str_cat("messages[", i, "]")));
    }
    if (const Json* tools = member(body, "tools")) {
        request.tools = parse_tools(*tools, "tools");
    }
    if (const Json* choice = member(body, "tool_choice")) {
        request.tool_choice = *choice;
    }
    validate_tool_choice(request);
    if (const Json* kwargs = member(body, "chat_template_kwargs")) {
        expect_type(*kwargs, Json::value_t::object, "chat_template_kwargs", "an object");
        request.chat_template_kwargs = *kwargs;
    }
    if (const Json* format = member(body, "response_format")) {
        expect_type(*format, Json::value_t::object, "response_format", "an object");
        const auto type = optional_string(*format, "type", "response_format");
        if (!type) {
            bad_field("response_format.type", "is required");
        }
        if (*type == "json_schema") {
            const Json* schema = member(*format, "json_schema");
            DS_CHECK(schema != nullptr && member(*schema, "schema") != nullptr,
                     "schema_ is required for json_schema response format request.");
        } else if (*type != "text" && *type != "json_object" && *type != "structural_tag") {
            bad_field("response_format.type",
                      str_cat("must be 'text', 'json_object', 'json_schema' or "
                              "'structural_tag', got '",
                              *type, "'"));
        }
        request.response_format = *format;
    }
    request.continue_final_message = optional_bool(body, "continue_final_message", false);

    // SGLang's reasoning rules: `reasoning: {effort, enabled}` and `reasoning_effort` decide
    // "thinking" / "enable_thinking" in chat_template_kwargs unless the client set those.
    std::optional<bool> thinking;
    if (const Json* effort = member(body, "reasoning_effort")) {
        if (effort->is_boolean()) {
            bad_field("reasoning_effort", "must not be a boolean");
        }
        request.reasoning_effort = parse_effort(*effort, "reasoning_effort");
    }
    if (const Json* reasoning = member(body, "reasoning"); reasoning && reasoning->is_object()) {
        const Json* effort = member(*reasoning, "effort");
        if (effort == nullptr) {
            effort = member(*reasoning, "reasoning_effort");
        }
        if (effort != nullptr) {
            request.reasoning_effort = parse_effort(*effort, "reasoning.effort");
        }
        const Json* enabled = member(*reasoning, "enabled");
        if (enabled == nullptr) {
            enabled = member(*reasoning, "enable");
        }
        if (enabled != nullptr) {
            bool on = json_truthy(*enabled);
            if (enabled->is_string()) {
                std::string text = enabled->get<std::string>();
                std::transform(text.begin(), text.end(), text.begin(),
                               [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
                on = text == "1" || text == "true" || text == "yes" || text == "y" || text == "on";
            }
            if (on) {
                thinking = true;
            }
        }
    }
    if (!request.reasoning_effort.is_null()) {
        thinking = !(request.reasoning_effort.is_string() &&
                     request.reasoning_effort.get<std::string>() == "none");
    }
    if (thinking) {
        if (!request.chat_template_kwargs.contains("thinking")) {
            request.chat_template_kwargs["thinking"] = *thinking;
        }
        if (!request.chat_template_kwargs.contains("enable_thinking")) {
            request.chat_template_kwargs["enable_thinking"] = *thinking;
        }
    }
    // The serving layer moves a reasoning_effort given as a template kwarg to the request field.
    if (request.chat_template_kwargs.contains("reasoning_effort")) {
        Json effort = request.chat_template_kwargs["reasoning_effort"];
        request.chat_template_kwargs.erase("reasoning_effort");
        if (!effort.is_null()) {
            request.reasoning_effort = std::move(effort);
        }
    }
    return request;
}

bool thinking_enabled(const ChatRequest& request) {
    const auto it = request.chat_template_kwargs.find("thinking");
    return it != request.chat_template_kwargs.end() && json_truthy(*it);
}

PreparedConversation prepare_conversation(const ChatRequest& request) {
    PreparedConversation out;
    out.messages = request.messages;
    for (auto& msg : out.messages) {
        if (!msg.content) {
            msg.content = std::string();
        }
    }
    if (!out.messages.empty() && out.messages.back().role == Role::kAssistant) {
        if (request.continue_final_message) {
            out.assistant_prefix = *out.messages.back().content;
            out.messages.pop_back();
        } else {
            ChatMessage as_user;
            as_user.role = Role::kUser;
            as_user.content = out.messages.back().content;
            out.messages.back() = std::move(as_user);
        }
    }
    return out;
}

std::string build_dsv32_prompt(const ChatRequest& request) {
    PreparedConversation conversation = prepare_conversation(request);
    auto& messages = conversation.messages;
    if (messages.empty() || messages.front().role != Role::kSystem) {
        ChatMessage system;
        system.role = Role::kSystem;
        system.content = std::string();
        messages.insert(messages.begin(), std::move(system));
    }
    if (!request.tools.empty()) {
        messages.front().tools = request.tools;
    }
    Dsv32Options options;
    options.mode = thinking_enabled(request) ? ThinkingMode::kThinking : ThinkingMode::kChat;
    std::string prompt = encode_dsv32(messages, options);
    if (conversation.assistant_prefix) {
        prompt += *conversation.assistant_prefix;
    }
    return prompt;
}

Json jinja_variables(const ChatRequest& request, std::optional<std::string>* assistant_prefix) {
    PreparedConversation conversation = prepare_conversation(request);
    Json messages = Json::array();
    for (const ChatMessage& msg : conversation.messages) {
        Json item = Json::object();
        item["role"] = role_name(msg.role);
        item["content"] = msg.content.value_or("");
        if (msg.tool_call_id) {
            item["tool_call_id"] = *msg.tool_call_id;
        }
        if (msg.name) {
            item["name"] = *msg.name;
        }
        if (msg.reasoning_content) {
            item["reasoning_content"] = *msg.reasoning_content;
        }
        if (!msg.tool_calls.empty()) {
            Json calls = Json::array();
            for (const ToolCall& call : msg.tool_calls) {
                Json function = Json::object();
                function["name"] = call.name;
                function["arguments"] = call.arguments;
                calls.push_back(Json{{"id", call.id ? Json(*call.id) : Json()},
                                     {"index", nullptr},
                                     {"type", "function"},
                                     {"function", std::move(function)}});
            }
            item["tool_calls"] = std::move(calls);
        }
        if (!msg.tools.empty()) {
            item["tools"] = msg.tools;
        }
        messages.push_back(std::move(item));
    }
    if (assistant_prefix != nullptr) {
        *assistant_prefix = conversation.assistant_prefix;
    }

    Json tools;  // null: the template sees `tools` as none
    const bool tools_off =
        request.tool_choice.is_string() && request.tool_choice.get<std::string>() == "none";
    if (!request.tools.empty() && !tools_off) {
        tools = Json::array();
        const auto named = named_tool_choice(request);
        for (const Json& tool : request.tools) {
            if (!named || tool["function"].value("name", std::string()) == *named) {
                tools.push_back(tool);
            }
        }
    }
    Json variables = Json::object();
    variables["messages"] = std::move(messages);
    variables["tools"] = std::move(tools);
    variables["documents"] = nullptr;  // transformers always passes it
    variables["add_generation_prompt"] = true;
    if (!request.reasoning_effort.is_null()) {
        variables["reasoning_effort"] = request.reasoning_effort;
    }
    for (const auto& [key, value] : request.chat_template_kwargs.items()) {
        variables[key] = value;
    }
    return variables;
}

}  // namespace dsserve::chat
