// The model's tokenizer as the benchmark's TokenCodec (prompt construction, retokenization).
#pragma once

#include <utility>

#include "bench/dataset.h"
#include "tokenizer/tokenizer.h"

namespace dsserve::bench {

class TokenizerCodec : public TokenCodec {
public:
    explicit TokenizerCodec(tokenizer::Tokenizer tok) : tok_(std::move(tok)) {}
    // As bench_serving: encode without special tokens, decode keeping them.
    std::vector<std::int32_t> encode(std::string_view text) const override {
        return tok_.encode(text, /*add_special_tokens=*/false);
    }
    std::string decode(std::span<const std::int32_t> ids) const override {
        return tok_.decode(ids, /*skip_special_tokens=*/false);
    }

private:
    tokenizer::Tokenizer tok_;
};

}  // namespace dsserve::bench
