// A stand-in tokenizer for the bench tests: one token per byte.
#pragma once

#include "bench/dataset.h"

namespace dsserve::bench::testing {

class ByteCodec : public TokenCodec {
public:
    std::vector<std::int32_t> encode(std::string_view text) const override {
        return std::vector<std::int32_t>(text.begin(), text.end());
    }
    std::string decode(std::span<const std::int32_t> ids) const override {
        return std::string(ids.begin(), ids.end());
    }
};

}  // namespace dsserve::bench::testing
