#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace dsserve::tokenizer {

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(&tokenizer), skip_special_tokens_(skip_special_tokens) {}

std::string StreamDecoder::push(std::int32_t id) {
    if (!tokenizer_->has_id(id) || (skip_special_tokens_ && tokenizer_->is_special(id))) {
        return {};
    }
    pending_ += tokenizer_->bytes_of(id);
    std::string out;
    const std::size_t consumed = append_utf8_lossy(pending_, false, out);
    pending_.erase(0, consumed);
    return out;
}

std::string StreamDecoder::flush() {
    std::string out = to_utf8_lossy(pending_);
    pending_.clear();
    return out;
}

}  // namespace dsserve::tokenizer
