// The prompt-relevant part of an OpenAI chat-completions request, parsed from JSON into native
// form, and SGLang's mapping of it onto the two prompt builders (the DeepSeek-V3.2 encoder and a
// Jinja chat template). Parse errors name the offending field ("messages[2].role: ...") because
// the server turns them into HTTP 400 bodies.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "chat/dsv32_encoder.h"
#include "chat/message.h"
#include "core/json.h"

namespace dsserve::chat {

struct ChatRequest {
    std::vector<ChatMessage> messages;
    // Request-level OpenAI tool objects, as the client sent them.
    std::vector<Json> tools;
    // "none", "auto", "required", or {"type": "function", "function": {"name": ...}}; null when
    // absent (SGLang then means "auto" with tools, "none" without).
    Json tool_choice;
    // After the reasoning rules: reasoning_effort (or reasoning.enabled) fills in "thinking" and
    // "enable_thinking" unless the client set them. Always an object.
    Json chat_template_kwargs = Json::object();
    // Request-level response_format, kept for constrained decoding; SGLang does not put it into
    // the prompt. Null when absent.
    Json response_format;
    bool continue_final_message = false;
    // A tier string ("none" ... "max") or a number in [0, 0.99]; null when absent. A
    // chat_template_kwargs.reasoning_effort moves here, as SGLang does.
    Json reasoning_effort;
};

// Validates and converts a request body. Throws Error naming the field on bad input.
ChatRequest parse_chat_request(const Json& body);

// Python truthiness of a JSON value (null, false, 0, "", [], {} are false).
bool json_truthy(const Json& value);

// The effective thinking switch: chat_template_kwargs.thinking, truthy. The V3.2 prompt then ends
// in "<think>" after the last user turn, and the reasoning parser starts inside reasoning.
bool thinking_enabled(const ChatRequest& request);

// Conversation prepared for a prompt builder the way SGLang prepares it: null content becomes
// "", a trailing assistant message becomes `assistant_prefix` (continue_final_message) or a
// user message (otherwise).
struct PreparedConversation {
    std::vector<ChatMessage> messages;
    std::optional<std::string> assistant_prefix;
};
PreparedConversation prepare_conversation(const ChatRequest& request);

// DeepSeek-V3.2 prompt text for the request, as SGLang builds it: an empty system message in
// front when the first message is not a system message, the request's tools attached to it,
// thinking mode from thinking_enabled(), earlier reasoning dropped, BOS at the start, and the
// continue_final_message prefix appended.
std::string build_dsv32_prompt(const ChatRequest& request);

// The variables a Jinja chat template sees for this request (SGLang's apply_chat_template call):
// messages (dicts without null members, tool-call arguments as objects), tools (null when none
// or tool_choice is "none"; only the named tool for a named tool_choice), add_generation_prompt
// true, reasoning_effort when set, then chat_template_kwargs. The caller adds special tokens.
// The continue_final_message prefix is returned separately through `assistant_prefix`.
Json jinja_variables(const ChatRequest& request, std::optional<std::string>* assistant_prefix);

}  // namespace dsserve::chat
