// Reasoning parser `deepseek-v3` (spec serving-api.md §2): splits a completion into the thinking
// text before `</think>` and the answer after it, incrementally.
//
// The V3.2 prompt ends with `<think>` when thinking is on, so the model starts inside its
// reasoning and never prints the opening tag; the parser is told so through force_reasoning
// (true iff the request's chat_template_kwargs.thinking is true). Semantics, the same for every
// way the text is cut into chunks:
//   - a run of `<think>` at the very start is removed; one there also starts reasoning when
//     force_reasoning is off. Without force and without a leading `<think>` everything is
//     content (SGLang also reacts to a `<think>` later in the text, differently when streaming
//     and not; dsserve does not, so the thinking switch alone decides);
//   - reasoning runs up to the first `</think>`, the rest is content, untrimmed;
//   - no `</think>` at all (output cut by max_tokens): everything is reasoning;
//   - a chunk ending in a strict prefix of a marker keeps those bytes until the next chunk shows
//     what they are; finish() releases them as the text they turned out to be.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace dsserve::parsers {

struct ReasoningDelta {
    std::string reasoning;
    std::string content;
};

class ReasoningParser {
public:
    // stream_reasoning=false buffers the reasoning and returns it in one piece at `</think>` (or
    // at finish); the assembled result is the same.
    ReasoningParser(bool force_reasoning, bool stream_reasoning);

    ReasoningDelta push(std::string_view text);
    ReasoningDelta finish();

    // The whole completion at once; equal to push(text) followed by finish().
    static ReasoningDelta parse(std::string_view text, bool force_reasoning);

private:
    enum class State { kStart, kReasoning, kContent, kFinished };

    void emit_reasoning(ReasoningDelta& delta, std::string_view text);

    bool force_reasoning_;
    bool stream_reasoning_;
    bool saw_open_ = false;
    State state_ = State::kStart;
    std::string buf_;   // undecided bytes: a marker prefix, or everything in kStart
    std::string held_;  // reasoning kept back when stream_reasoning is off
};

// Names accepted for --reasoning-parser ("none" disables it).
const std::vector<std::string>& reasoning_parser_names();
// Throws Error naming the valid parsers unless `name` is one of them or "none"/"".
void check_reasoning_parser_name(std::string_view name);

}  // namespace dsserve::parsers
