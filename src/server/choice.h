// One choice's output on its way to the client: token ids are detokenized incrementally, stop
// strings are cut (a partial match is held back so it never leaks into streamed text), and the
// visible text runs through the reasoning and tool-call parsers.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "parsers/output_parser.h"
#include "tokenizer/tokenizer.h"

namespace dsserve::server {

struct ChoiceOptions {
    std::vector<std::string> stop;
    bool no_stop_trim = false;
    bool skip_special_tokens = true;
    std::optional<parsers::OutputParserOptions> parser;
};

class ChoiceStream {
public:
    ChoiceStream(const tokenizer::Tokenizer& tok, ChoiceOptions options);

    struct Delta {
        std::string text;             // newly visible text
        parsers::ParsedDelta parsed;  // the same text through the parsers (when configured)
    };
    // Adds generated tokens; returns what may be shown now.
    Delta push(std::span<const std::int32_t> ids);
    // End of generation: flushes held-back text and the parsers.
    Delta finish();

    bool stopped() const { return matched_stop_.has_value(); }
    const std::optional<std::string>& matched_stop() const { return matched_stop_; }
    const std::string& text() const { return visible_; }
    bool has_tool_calls() const { return parser_ && parser_->has_tool_calls(); }
    bool parsing() const { return parser_ != nullptr; }

private:
    Delta emit(std::size_t upto, bool at_end);

    ChoiceOptions options_;
    tokenizer::StreamDecoder decoder_;
    std::unique_ptr<parsers::OutputParser> parser_;
    std::string text_;     // everything decoded (cut at a matched stop string)
    std::string visible_;  // what has been released
    std::optional<std::string> matched_stop_;
    bool finished_ = false;
};

}  // namespace dsserve::server
