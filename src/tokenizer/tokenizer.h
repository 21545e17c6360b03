// A byte-level BPE tokenizer read from Hugging Face files (tokenizer.json and
// tokenizer_config.json) that gives the ids HF `tokenizers` gives, for DeepSeek-V3.2's files and
// any others built from the same components:
//   added tokens -> identity normalizer -> Sequence of Split regexes + ByteLevel -> BPE
//   -> ByteLevel post-processor (ids unchanged) -> BOS/EOS per tokenizer_config.json.
// Anything else in the files is rejected at load time with an Error naming it.
//
// Text at this API is UTF-8. encode() turns ill-formed UTF-8 into U+FFFD first (each maximal
// ill-formed subpart becomes one U+FFFD, as Rust's from_utf8_lossy and Python's
// errors="replace" do), so encode(bytes) == encode(to_utf8_lossy(bytes)).
//
// A const Tokenizer may be used from many threads at once; copies share one immutable state
// (and one bounded, thread-safe cache of encoded pieces).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"

namespace dsserve::tokenizer {

class Tokenizer {
public:
    // Reads dir/tokenizer.json and dir/tokenizer_config.json.
    static Tokenizer load(const std::filesystem::path& dir);
    // The same from the files' contents.
    static Tokenizer from_json(std::string_view tokenizer_json, std::string_view config_json);

    // With add_special_tokens, BOS goes first when the config's add_bos_token is true and EOS
    // last when add_eos_token is; added tokens in the text are matched either way.
    std::vector<std::int32_t> encode(std::string_view text, bool add_special_tokens = false) const;
    // Ids the vocab does not have are skipped, like HF does; skip_special_tokens drops the
    // added tokens marked special (BOS, EOS, ...) but keeps the others (<think>, <｜User｜>).
    std::string decode(std::span<const std::int32_t> ids, bool skip_special_tokens = true) const;

    // The id of a token as written in the vocab (byte-level symbols, e.g. "Ġthe") or of an
    // added token's content.
    std::optional<std::int32_t> token_to_id(std::string_view token) const;
    // The bytes this single token decodes to; they may be part of a UTF-8 character. Throws
    // Error for an id the vocab does not have.
    std::string token_bytes(std::int32_t id) const;
    bool is_special(std::int32_t id) const;
    bool has_id(std::int32_t id) const;

    // -1 when the config names no such token.
    std::int32_t bos_id() const;
    std::int32_t eos_id() const;
    bool add_bos_token() const;
    bool add_eos_token() const;
    std::size_t vocab_size() const;  // highest id + 1 (128815 for V3.2)
    const Json& config() const;      // tokenizer_config.json (chat_template, bos_token, ...)

    struct Impl;

private:
    friend class StreamDecoder;
    explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
    std::string_view bytes_of(std::int32_t id) const;  // empty for unknown ids

    std::shared_ptr<const Impl> impl_;
};

// Turns ids into text one id at a time, for streaming: push() returns only complete UTF-8
// characters and holds back the bytes of a character whose remaining bytes are still to come.
// Bytes that can never become valid come out as U+FFFD as soon as that is certain, so the
// concatenation of every push() and the final flush() equals decode() of all the ids.
// The Tokenizer must outlive the decoder.
class StreamDecoder {
public:
    StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens);

    std::string push(std::int32_t id);  // new text that is now complete
    std::string flush();                // whatever is left (an incomplete character as U+FFFD)

    // Bytes held back, waiting for the rest of a character.
    std::size_t pending_bytes() const { return pending_.size(); }

private:
    const Tokenizer* tokenizer_;
    bool skip_special_tokens_;
    std::string pending_;
};

}  // namespace dsserve::tokenizer
