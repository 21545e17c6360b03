// The parser the server runs per choice: reasoning first, then tool calls in what is left
// (spec serving-api.md §2.4). push() takes detokenized text as it is generated and returns what
// can be sent now; finish() flushes at the end of generation. parse() is the non-streaming path
// and runs the same state machines over the whole text, so the message assembled from any
// chunking of a stream equals the non-streamed one (ids aside: each call gets a fresh id).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "parsers/reasoning_parser.h"
#include "parsers/tool_parser.h"

namespace dsserve::parsers {

struct OutputParserOptions {
    std::string reasoning_parser;  // "deepseek-v3", or "" / "none"
    std::string tool_parser;       // "deepseekv32", "deepseekv31", or "" / "none"
    bool thinking = false;         // chat_template_kwargs.thinking: output starts in reasoning
    bool stream_reasoning = true;  // false: reasoning arrives in one piece at `</think>`
    std::vector<std::string> tool_names;  // functions of the request; empty accepts any name
};

struct ToolCall {
    int index = 0;
    std::string id;
    std::string name;
    std::string arguments;  // JSON object text, Python json.dumps form
};

// The non-streaming message: `content` is "" when empty, `reasoning_content` absent when empty
// or when no reasoning parser runs.
struct ParsedMessage {
    std::string content;
    std::optional<std::string> reasoning_content;
    std::vector<ToolCall> tool_calls;
};

// What one push() or finish() produced. Fields are empty when there is nothing to send; a call's
// first item carries id and name (arguments ""), later items argument fragments.
struct ParsedDelta {
    std::string reasoning_content;
    std::string content;
    std::vector<ToolCallDelta> tool_calls;

    bool empty() const {
        return reasoning_content.empty() && content.empty() && tool_calls.empty();
    }
};

class OutputParser {
public:
    // Throws Error for an unknown parser name.
    explicit OutputParser(OutputParserOptions options);

    ParsedDelta push(std::string_view text);
    ParsedDelta finish();

    // Whether a call has been announced so far (finish_reason "stop" becomes "tool_calls").
    bool has_tool_calls() const { return has_tool_calls_; }

    static ParsedMessage parse(std::string_view text, const OutputParserOptions& options);

private:
    ParsedDelta run(std::string_view text, bool at_end);
    // Cuts `text` before an unfinished UTF-8 sequence, keeping those bytes in `carry`.
    static std::string take_complete(std::string& carry, std::string text, bool at_end);

    std::optional<ReasoningParser> reasoning_;
    std::unique_ptr<ToolParser> tools_;
    bool has_tool_calls_ = false;
    bool finished_ = false;
    std::string reasoning_carry_;
    std::string content_carry_;
    std::vector<std::string> argument_carry_;  // per call index
};

// Concatenates deltas into the message the client would rebuild from the stream.
class StreamAssembler {
public:
    void add(const ParsedDelta& delta);
    ParsedMessage message() const;

private:
    std::string reasoning_;
    std::string content_;
    std::vector<ToolCall> calls_;
};

// "stop" becomes "tool_calls" when the choice has at least one call; every other reason
// (notably "length") stays.
std::string rewrite_finish_reason(std::string_view finish_reason, bool has_tool_calls);

// The OpenAI non-streaming message fields: {"content", "reasoning_content", "tool_calls"} with
// null reasoning_content / tool_calls when absent, each call as
// {"id", "index", "type": "function", "function": {"name", "arguments"}}.
Json message_to_json(const ParsedMessage& message);

}  // namespace dsserve::parsers
