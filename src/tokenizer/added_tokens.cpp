#include "tokenizer/added_tokens.h"

#include <algorithm>

#include "core/error.h"
#include "tokenizer/unicode_classes.h"

namespace dsserve::tokenizer {

AddedTokenMatcher::AddedTokenMatcher(const std::vector<AddedToken>& tokens) : tokens_(tokens) {
    nodes_.emplace_back();
    for (std::size_t t = 0; t < tokens_.size(); ++t) {
        const std::string& content = tokens_[t].content;
        DS_CHECK(!content.empty(), "tokenizer.json: added token ", tokens_[t].id, " is empty");
        std::int32_t node = 0;
        for (char ch : content) {
            const auto byte = static_cast<unsigned char>(ch);
            std::int32_t child = nodes_[node].first_child;
            while (child >= 0 && nodes_[child].byte != byte) {
                child = nodes_[child].next_sibling;
            }
            if (child < 0) {
                child = static_cast<std::int32_t>(nodes_.size());
                Node fresh;
                fresh.byte = byte;
                fresh.next_sibling = nodes_[node].first_child;
                nodes_.push_back(fresh);
                nodes_[node].first_child = child;
            }
            node = child;
        }
        // The same content twice: the first one listed wins, as in HF's pattern list.
        if (nodes_[node].token < 0) {
            nodes_[node].token = static_cast<std::int32_t>(t);
        }
        starts_[static_cast<unsigned char>(content[0])] = true;
    }
}

std::int32_t AddedTokenMatcher::longest_at(std::string_view text, std::size_t pos, std::size_t end,
                                           std::size_t& length) const {
    std::int32_t found = -1;
    std::int32_t node = 0;
    for (std::size_t i = pos; i < end; ++i) {
        const auto byte = static_cast<unsigned char>(text[i]);
        std::int32_t child = nodes_[node].first_child;
        while (child >= 0 && nodes_[child].byte != byte) {
            child = nodes_[child].next_sibling;
        }
        if (child < 0) {
            break;
        }
        node = child;
        if (nodes_[node].token >= 0) {
            found = nodes_[node].token;
            length = i + 1 - pos;
        }
    }
    return found;
}

void AddedTokenMatcher::split(std::string_view text, std::size_t begin, std::size_t end,
                              std::vector<Segment>& out) const {
    // HF looks at the piece being split as a string of its own: the flags see neither the text
    // before `begin` nor after `end`.
    const std::string_view piece = text.substr(0, end);
    std::size_t text_start = begin;  // start of the text not yet emitted
    std::size_t pos = begin;         // where the next search starts
    auto emit_text = [&](std::size_t from, std::size_t to) {
        if (from < to) {
            out.push_back({from, to, Segment::kTextSegment});
        }
    };
    while (pos < end) {
        if (!starts_[static_cast<unsigned char>(piece[pos])]) {
            ++pos;
            continue;
        }
        std::size_t length = 0;
        const std::int32_t t = longest_at(piece, pos, end, length);
        if (t < 0) {
            ++pos;
            continue;
        }
        const AddedToken& token = tokens_[t];
        std::size_t start = pos;
        std::size_t stop = pos + length;
        pos = stop;  // matches never overlap, whatever the flags do with this one
        if (token.single_word) {
            const bool word_before = start > begin && is_word_char(decode_before(piece, start));
            std::size_t unused = 0;
            const bool word_after = stop < end && is_word_char(decode_at(piece, stop, unused));
            if (word_before || word_after) {
                continue;
            }
        }
        if (token.lstrip) {
            // Never reach back into what an earlier token already took.
            while (start > text_start && is_white_space(decode_before(piece, start))) {
                std::size_t step = 1;
                while ((static_cast<unsigned char>(piece[start - step]) & 0xC0) == 0x80) {
                    ++step;
                }
                start -= step;
            }
        }
        if (token.rstrip) {
            std::size_t step = 0;
            while (stop < end && is_white_space(decode_at(piece, stop, step))) {
                stop += step;
            }
        }
        emit_text(text_start, start);
        out.push_back({start, stop, token.id});
        text_start = std::max(text_start, stop);
    }
    emit_text(text_start, end);
}

}  // namespace dsserve::tokenizer
