#include "parsers/v31_tool_parser.h"

#include <utility>

#include "parsers/text.h"

namespace dsserve::parsers {
namespace {

constexpr std::string_view kCallsBegin = "<｜tool▁calls▁begin｜>";
constexpr std::string_view kCallsEnd = "<｜tool▁calls▁end｜>";
constexpr std::string_view kCallBegin = "<｜tool▁call▁begin｜>";
constexpr std::string_view kCallEnd = "<｜tool▁call▁end｜>";
constexpr std::string_view kSep = "<｜tool▁sep｜>";

// A function name longer than this is not a name: the call is skipped instead of holding back the
// rest of the output while waiting for a separator.
constexpr size_t kMaxNameBytes = 256;

}  // namespace

V31ToolParser::V31ToolParser(std::vector<std::string> known_tools)
    : BlockToolParser({kCallsBegin, kCallsEnd, kCallEnd}, std::move(known_tools)) {}

size_t V31ToolParser::parse_block(std::string_view text, bool* closed) {
    size_t pos = 0;
    while (pos < text.size()) {
        std::string_view rest = text.substr(pos);
        size_t which = 0;
        switch (state_) {
            case State::kBetween: {
                size_t found = find_first_marker(rest, 0, {kCallBegin, kCallsEnd}, &which);
                if (found == std::string_view::npos) {
                    return text.size() - partial_marker_suffix(rest, {kCallBegin, kCallsEnd});
                }
                if (which == 1) {
                    *closed = true;
                    return pos + found + kCallsEnd.size();
                }
                pos += found + kCallBegin.size();
                name_.clear();
                state_ = State::kName;
                break;
            }
            case State::kName: {
                size_t found =
                    find_first_marker(rest, 0, {kSep, kCallEnd, kCallsEnd, kCallBegin}, &which);
                size_t take = found;
                if (found == std::string_view::npos) {
                    take = rest.size() -
                           partial_marker_suffix(rest, {kSep, kCallEnd, kCallsEnd, kCallBegin});
                }
                name_.append(rest.substr(0, take));
                if (name_.size() > kMaxNameBytes) {
                    state_ = State::kBetween;  // not a call: skip to the next marker
                    pos += take;
                    break;
                }
                if (found == std::string_view::npos) {
                    return pos + take;
                }
                pos += found;
                if (which == 0) {
                    pos += kSep.size();
                    begin_call(name_);
                    arguments_ = JsonNormalizer(/*object_only=*/true);
                    arguments_sent_ = 0;
                    state_ = State::kArguments;
                } else {
                    state_ = State::kBetween;  // a call without a separator is dropped
                }
                break;
            }
            case State::kArguments: {
                size_t found = find_first_marker(rest, 0, {kCallEnd, kCallsEnd}, &which);
                if (found == std::string_view::npos) {
                    size_t take = rest.size() - partial_marker_suffix(rest, {kCallEnd, kCallsEnd});
                    feed_arguments(rest.substr(0, take));
                    return pos + take;
                }
                feed_arguments(rest.substr(0, found));
                end_arguments();
                if (which == 1) {
                    *closed = true;
                    return pos + found + kCallsEnd.size();
                }
                pos += found + kCallEnd.size();
                break;
            }
        }
    }
    return pos;
}

void V31ToolParser::feed_arguments(std::string_view text) {
    arguments_.push(text);
    const std::string& out = arguments_.output();
    call_arguments(std::string_view(out).substr(arguments_sent_));
    arguments_sent_ = out.size();
}

void V31ToolParser::end_arguments() {
    arguments_.finish();
    const std::string& out = arguments_.output();
    if (out.empty()) {
        call_arguments("{}");
    } else {
        call_arguments(std::string_view(out).substr(arguments_sent_));
    }
    end_call();
    state_ = State::kBetween;
}

void V31ToolParser::finish_block(std::string_view rest) {
    if (state_ == State::kArguments) {
        feed_arguments(rest);
        end_arguments();
    }
}

}  // namespace dsserve::parsers
