#include "parsers/block_tool_parser.h"

#include <algorithm>
#include <utility>

#include "core/error.h"
#include "core/log.h"
#include "parsers/text.h"

namespace dsserve::parsers {

BlockToolParser::BlockToolParser(std::vector<std::string_view> prose_markers,
                                 std::vector<std::string> known_tools)
    : prose_markers_(std::move(prose_markers)), known_tools_(std::move(known_tools)) {
    DS_ASSERT(!prose_markers_.empty(), "no block opener");
}

ToolDelta BlockToolParser::push(std::string_view text) {
    buf_ += text;
    run();
    return std::exchange(delta_, ToolDelta{});
}

void BlockToolParser::run() {
    for (;;) {
        if (state_ == State::kProse) {
            size_t which = 0;
            size_t found = find_first_marker(buf_, 0, prose_markers_, &which);
            if (found == std::string::npos) {
                // Also keep an unfinished UTF-8 character: whether it is whitespace (dropped
                // before a block) is known only once it is complete.
                size_t keep = std::max(partial_marker_suffix(buf_, prose_markers_),
                                       buf_.size() - utf8_complete_prefix(buf_));
                emit_prose(std::string_view(buf_).substr(0, buf_.size() - keep));
                buf_.erase(0, buf_.size() - keep);
                return;
            }
            emit_prose(std::string_view(buf_).substr(0, found));
            buf_.erase(0, found + prose_markers_[which].size());
            if (which != 0) {
                continue;  // a stray closing marker: never content, and nothing to close
            }
            block_raw_ = prose_markers_[0];
            state_ = State::kBlock;
            committed_ = false;
        }
        bool closed = false;
        size_t used = parse_block(buf_, &closed);
        DS_ASSERT(used <= buf_.size(), used, " > ", buf_.size());
        if (!committed_) {
            block_raw_.append(buf_, 0, used);
        }
        buf_.erase(0, used);
        if (!closed) {
            return;
        }
        // A closed block, understood or empty, is never content; the whitespace before it goes.
        block_raw_.clear();
        held_space_.clear();
        after_block_ = true;
        state_ = State::kProse;
    }
}

void BlockToolParser::emit_prose(std::string_view text) {
    if (after_block_) {
        text.remove_prefix(leading_space_bytes(text));
        if (text.empty()) {
            return;
        }
        after_block_ = false;
        if (any_content_) {
            held_space_ = "\n";
        }
    }
    // Trailing whitespace waits: it is dropped if a block opener comes next. held_space_ is only
    // whitespace, so the text's own trailing run is the whole run.
    size_t trailing = trailing_space_bytes(text);
    if (trailing == text.size()) {
        held_space_ += text;
        return;
    }
    delta_.content += held_space_;
    delta_.content += text.substr(0, text.size() - trailing);
    held_space_.assign(text.substr(text.size() - trailing));
    any_content_ = true;
}

ToolDelta BlockToolParser::finish() {
    if (state_ == State::kBlock) {
        if (committed_) {
            finish_block(buf_);
        } else {
            // Opener without a single recognizable call: give the text back unchanged.
            std::string raw = std::move(block_raw_);
            raw += buf_;
            block_raw_.clear();
            delta_.content += held_space_;
            delta_.content += raw;
            held_space_.clear();
        }
    } else {
        emit_prose(buf_);
    }
    buf_.clear();
    if (!after_block_) {
        delta_.content += held_space_;
    }
    held_space_.clear();
    state_ = State::kProse;
    return std::exchange(delta_, ToolDelta{});
}

bool BlockToolParser::begin_call(std::string_view name) {
    DS_ASSERT(!call_open_, "call announced inside another call");
    if (!committed_) {
        committed_ = true;
        block_raw_.clear();
        held_space_.clear();
    }
    name = python_strip(name);
    if (name.empty()) {
        log::warn("tool call without a function name dropped");
        return false;
    }
    if (!known_tools_.empty() &&
        std::find(known_tools_.begin(), known_tools_.end(), name) == known_tools_.end()) {
        log::warn("model called unknown function '", name, "'; call dropped");
        return false;
    }
    call_open_ = true;
    delta_.calls.push_back(
        ToolCallDelta{next_index_++, make_tool_call_id(), std::string(name), ""});
    return true;
}

void BlockToolParser::call_arguments(std::string_view fragment) {
    if (!call_open_ || fragment.empty()) {
        return;
    }
    int index = next_index_ - 1;
    if (!delta_.calls.empty() && delta_.calls.back().index == index &&
        !delta_.calls.back().name.has_value()) {
        delta_.calls.back().arguments += fragment;
    } else {
        delta_.calls.push_back(
            ToolCallDelta{index, std::nullopt, std::nullopt, std::string(fragment)});
    }
}

}  // namespace dsserve::parsers
