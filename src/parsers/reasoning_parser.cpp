#include "parsers/reasoning_parser.h"

#include "core/error.h"
#include "parsers/text.h"

namespace dsserve::parsers {
namespace {

constexpr std::string_view kThinkOpen = "<think>";
constexpr std::string_view kThinkClose = "</think>";

}  // namespace

ReasoningParser::ReasoningParser(bool force_reasoning, bool stream_reasoning)
    : force_reasoning_(force_reasoning), stream_reasoning_(stream_reasoning) {}

void ReasoningParser::emit_reasoning(ReasoningDelta& delta, std::string_view text) {
    if (stream_reasoning_) {
        delta.reasoning += text;
    } else {
        held_ += text;
    }
}

ReasoningDelta ReasoningParser::push(std::string_view text) {
    ReasoningDelta delta;
    DS_ASSERT(state_ != State::kFinished, "push after finish");
    if (state_ == State::kContent) {
        delta.content.assign(text);
        return delta;
    }
    buf_ += text;
    if (state_ == State::kStart) {
        while (buf_.starts_with(kThinkOpen)) {
            buf_.erase(0, kThinkOpen.size());
            saw_open_ = true;
        }
        if (!buf_.empty() && kThinkOpen.starts_with(buf_)) {
            return delta;  // maybe another `<think>`: wait
        }
        if (buf_.empty()) {
            return delta;
        }
        state_ = (force_reasoning_ || saw_open_) ? State::kReasoning : State::kContent;
        if (state_ == State::kContent) {
            delta.content = std::move(buf_);
            buf_.clear();
            return delta;
        }
    }
    // kReasoning
    size_t end = buf_.find(kThinkClose);
    if (end != std::string::npos) {
        emit_reasoning(delta, std::string_view(buf_).substr(0, end));
        if (!stream_reasoning_) {
            delta.reasoning = std::move(held_);
            held_.clear();
        }
        delta.content = buf_.substr(end + kThinkClose.size());
        buf_.clear();
        state_ = State::kContent;
        return delta;
    }
    size_t keep = partial_marker_suffix(buf_, {kThinkClose});
    emit_reasoning(delta, std::string_view(buf_).substr(0, buf_.size() - keep));
    buf_.erase(0, buf_.size() - keep);
    return delta;
}

ReasoningDelta ReasoningParser::finish() {
    ReasoningDelta delta;
    switch (state_) {
        case State::kStart:
            // Only a prefix of `<think>` (or nothing) arrived.
            if (force_reasoning_ || saw_open_) {
                delta.reasoning = std::move(buf_);
            } else {
                delta.content = std::move(buf_);
            }
            break;
        case State::kReasoning:
            // No `</think>`: the output was cut inside the reasoning; all of it is reasoning.
            delta.reasoning = held_ + buf_;
            break;
        case State::kContent:
        case State::kFinished:
            break;
    }
    buf_.clear();
    held_.clear();
    state_ = State::kFinished;
    return delta;
}

ReasoningDelta ReasoningParser::parse(std::string_view text, bool force_reasoning) {
    ReasoningParser parser(force_reasoning, /*stream_reasoning=*/false);
    ReasoningDelta result = parser.push(text);
    ReasoningDelta rest = parser.finish();
    result.reasoning += rest.reasoning;
    result.content += rest.content;
    return result;
}

const std::vector<std::string>& reasoning_parser_names() {
    static const std::vector<std::string> names = {"deepseek-v3"};
    return names;
}

void check_reasoning_parser_name(std::string_view name) {
    if (name.empty() || name == "none") {
        return;
    }
    for (const std::string& known : reasoning_parser_names()) {
        if (name == known) {
            return;
        }
    }
    fail("unknown reasoning parser '", name, "' (valid: deepseek-v3, none)");
}

}  // namespace dsserve::parsers
