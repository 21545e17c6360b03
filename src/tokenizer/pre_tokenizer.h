// The pre-tokenizer of a byte-level BPE tokenizer.json: a Sequence of `Split` regexes (behaviour
// Isolated or Removed) followed by `ByteLevel` without its own regex. Each Split runs on every
// piece the previous one produced, as HF `tokenizers` does, so a lookahead at a piece's end sees
// the end of the piece and not the text behind it. ByteLevel only maps bytes to symbols, which
// the BPE model does itself, so here it only checks the configuration.
//
// HF runs these regexes with Oniguruma; we run them with PCRE2 (JIT) after translating the few
// constructs whose meaning differs: Unicode classes follow Oniguruma's (newer) tables and `\s` is
// exactly White_Space (see tools/golden/make_unicode_tables.py). Constructs that the translation
// does not know are rejected when the tokenizer is loaded.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"

namespace dsserve::tokenizer {

// A piece of text: byte offsets [begin, end) into the string being encoded.
struct Span {
    std::size_t begin = 0;
    std::size_t end = 0;
};

// Rewrites an Oniguruma pattern (as written in tokenizer.json) into a PCRE2 pattern with the
// same matches; throws Error naming the construct it does not support.
std::string translate_pattern(std::string_view onig_pattern);

// Buffers PreTokenizer::split reuses between calls, so that encoding does not allocate per piece.
struct SplitScratch {
    std::vector<Span> first;
    std::vector<Span> second;
};

// One compiled Split: a PCRE2 pattern and what happens to the matches.
class SplitRegex {
public:
    enum class Behavior { kIsolated, kRemoved };

    SplitRegex(const std::string& pcre2_pattern, Behavior behavior);
    ~SplitRegex();
    SplitRegex(SplitRegex&& other) noexcept;
    SplitRegex& operator=(SplitRegex&& other) noexcept;
    SplitRegex(const SplitRegex&) = delete;
    SplitRegex& operator=(const SplitRegex&) = delete;

    // Splits text[piece] and appends the resulting non-empty pieces, in order, to `out`.
    // `text` must be valid UTF-8.
    void split(std::string_view text, Span piece, std::vector<Span>& out) const;

private:
    void* code_ = nullptr;  // pcre2_code_8*; kept opaque so that pcre2.h stays out of headers
    Behavior behavior_ = Behavior::kIsolated;
};

class PreTokenizer {
public:
    // Builds from tokenizer.json's "pre_tokenizer"; throws Error for what it does not implement.
    static PreTokenizer from_json(const nlohmann::json& config);

    // Appends the pieces of text[piece] to `out`. `text` must be valid UTF-8.
    void split(std::string_view text, Span piece, std::vector<Span>& out,
               SplitScratch& scratch) const;

    std::size_t num_splits() const { return splits_.size(); }

private:
    std::vector<SplitRegex> splits_;
};

}  // namespace dsserve::tokenizer
