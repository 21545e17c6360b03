// DeepSeek-V3.2 prompt encoder: OpenAI-style messages to prompt text, byte for byte as DeepSeek's
// reference `encoding_dsv32.py` (the model card's encoding/ folder) writes it. Tool calls in
// assistant turns are DSML blocks, tool schemas go into a "## Tools" section of the system (or
// developer) message, and in thinking mode each assistant turn after the last user message
// carries its reasoning before "</think>". docs/chat-encoding.md lists the pieces and where
// SGLang's copy of the encoder differs.
#pragma once

#include <span>
#include <string>

#include "chat/message.h"

namespace dsserve::chat {

enum class ThinkingMode { kChat, kThinking };

struct Dsv32Options {
    ThinkingMode mode = ThinkingMode::kChat;
    // Thinking mode only: drop reasoning of assistant turns before the last user message (and,
    // as the reference does, developer messages before it).
    bool drop_thinking = true;
    // Start the prompt with <｜begin▁of▁sentence｜> (only when nothing is context).
    bool add_bos = true;
    // The first `num_context_messages` messages are history that is already in the KV cache:
    // they shape how later messages render but are not rendered themselves.
    size_t num_context_messages = 0;
};

inline constexpr std::string_view kDsv32Bos = "<｜begin▁of▁sentence｜>";
inline constexpr std::string_view kDsv32Eos = "<｜end▁of▁sentence｜>";
inline constexpr std::string_view kThinkStart = "<think>";
inline constexpr std::string_view kThinkEnd = "</think>";

// Renders the messages. Throws Error for conversations the reference rejects (a tool result
// without a matching assistant tool call, an empty developer message, an assistant turn after
// the last user message in thinking mode with neither reasoning nor tool calls).
std::string encode_dsv32(std::span<const ChatMessage> messages, const Dsv32Options& options);

// The "## Tools" block for a list of OpenAI tool objects (what follows "\n\n" in a system
// message). Each tool's "function" object is written as one json.dumps line.
std::string render_dsv32_tools(std::span<const Json> tools);

}  // namespace dsserve::chat
