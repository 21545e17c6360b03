#include "server/choice.h"

#include <algorithm>

namespace dsserve::server {

ChoiceStream::ChoiceStream(const tokenizer::Tokenizer& tok, ChoiceOptions options)
    : options_(std::move(options)), decoder_(tok, options_.skip_special_tokens) {
    if (options_.parser) {
        parser_ = std::make_unique<parsers::OutputParser>(*options_.parser);
    }
}

ChoiceStream::Delta ChoiceStream::push(std::span<const std::int32_t> ids) {
    if (finished_ || matched_stop_) {
        return {};
    }
    std::size_t search_from = text_.size();
    for (auto id : ids) {
        text_ += decoder_.push(id);
    }
    // A stop string may straddle the old end: search from the longest stop string back.
    std::size_t longest = 0;
    for (const auto& s : options_.stop) {
        longest = std::max(longest, s.size());
    }
    search_from = search_from >= longest ? search_from - longest + 1 : 0;
    std::size_t best = std::string::npos;
    for (const auto& s : options_.stop) {
        if (s.empty()) {
            continue;
        }
        auto pos = text_.find(s, search_from);
        if (pos != std::string::npos && (best == std::string::npos || pos < best)) {
            best = pos;
            matched_stop_ = s;
        }
    }
    if (best != std::string::npos) {
        text_.resize(options_.no_stop_trim ? best + matched_stop_->size() : best);
        return emit(text_.size(), false);
    }
    // Hold back a tail that could still become a stop string.
    std::size_t hold = 0;
    for (const auto& s : options_.stop) {
        for (std::size_t k = std::min(s.size() - 1, text_.size()); k > hold; --k) {
            if (text_.compare(text_.size() - k, k, s, 0, k) == 0) {
                hold = k;
                break;
            }
        }
    }
    return emit(text_.size() - hold, false);
}

ChoiceStream::Delta ChoiceStream::finish() {
    if (finished_) {
        return {};
    }
    if (!matched_stop_) {
        text_ += decoder_.flush();
    }
    Delta d = emit(text_.size(), true);
    finished_ = true;
    return d;
}

ChoiceStream::Delta ChoiceStream::emit(std::size_t upto, bool at_end) {
    Delta d;
    if (upto > visible_.size()) {
        d.text = text_.substr(visible_.size(), upto - visible_.size());
        visible_ += d.text;
    }
    if (parser_) {
        if (!d.text.empty()) {
            d.parsed = parser_->push(d.text);
        }
        if (at_end || matched_stop_) {
            auto tail = parser_->finish();
            d.parsed.reasoning_content += tail.reasoning_content;
            d.parsed.content += tail.content;
            for (auto& c : tail.tool_calls) {
                d.parsed.tool_calls.push_back(std::move(c));
            }
        }
    }
    if (matched_stop_) {
        finished_ = true;
    }
    return d;
}

}  // namespace dsserve::server
