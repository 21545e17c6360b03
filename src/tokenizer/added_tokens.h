// Added tokens (tokenizer.json "added_tokens"): strings matched in the raw text before anything
// else runs and turned straight into their id. Matching is leftmost-longest, like the
// Aho-Corasick automaton HF builds, and honours each token's flags:
//   single_word  the match counts only when no word character touches it on either side;
//   lstrip       the whitespace before the match joins the token (and is dropped);
//   rstrip       the whitespace after it likewise.
// HF matches the non-normalized tokens on the raw text first, then the normalized ones on the
// normalized remainder; with the identity normalizer this is two passes over the same text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dsserve::tokenizer {

struct AddedToken {
    std::int32_t id = 0;
    std::string content;
    bool single_word = false;
    bool lstrip = false;
    bool rstrip = false;
    bool normalized = true;
    bool special = false;
};

// A stretch of the text: an added token (id >= 0) or text for the model (id == kTextSegment).
struct Segment {
    static constexpr std::int32_t kTextSegment = -1;
    std::size_t begin = 0;
    std::size_t end = 0;
    std::int32_t id = kTextSegment;
};

class AddedTokenMatcher {
public:
    AddedTokenMatcher() = default;
    explicit AddedTokenMatcher(const std::vector<AddedToken>& tokens);

    // Splits text[begin, end) into segments appended to `out` (empty text segments are left
    // out). `text` must be valid UTF-8.
    void split(std::string_view text, std::size_t begin, std::size_t end,
               std::vector<Segment>& out) const;

    bool empty() const { return tokens_.empty(); }

private:
    struct Node {
        std::int32_t first_child = -1;
        std::int32_t next_sibling = -1;
        std::int32_t token = -1;  // index into tokens_ of the token ending here
        unsigned char byte = 0;
    };

    // Index into tokens_ of the longest token starting at text[pos], or -1.
    std::int32_t longest_at(std::string_view text, std::size_t pos, std::size_t end,
                            std::size_t& length) const;

    std::vector<AddedToken> tokens_;
    std::vector<Node> nodes_;  // a byte trie; nodes_[0] is the root
    bool starts_[256] = {};    // bytes that begin some token, to skip the rest quickly
};

}  // namespace dsserve::tokenizer
