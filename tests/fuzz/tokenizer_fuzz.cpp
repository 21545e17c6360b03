// Fuzzes the DeepSeek-V3.2 tokenizer. The first byte picks what the rest is:
//   0: text (any bytes) to encode, with and without special tokens; decoding the ids must give
//      back the text with ill-formed UTF-8 repaired, and the stream decoder must agree;
//   1: token ids (little-endian int32, any value) to decode, at once and streamed, both skip
//      settings; the results must be valid UTF-8 and agree.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace {

using dsserve::tokenizer::StreamDecoder;
using dsserve::tokenizer::Tokenizer;

const Tokenizer& tokenizer() {
    static const Tokenizer tok =
        Tokenizer::load(std::string(DSSERVE_DATA_DIR) + "/tokenizer/deepseek-v3.2");
    return tok;
}

void check(bool condition) {
    if (!condition) {
        __builtin_trap();
    }
}

std::string streamed(const Tokenizer& tok, const std::vector<std::int32_t>& ids, bool skip) {
    StreamDecoder decoder(tok, skip);
    std::string out;
    for (std::int32_t id : ids) {
        const std::string piece = decoder.push(id);
        check(dsserve::tokenizer::is_valid_utf8(piece));
        out += piece;
    }
    return out + decoder.flush();
}

void fuzz_text(const Tokenizer& tok, std::string_view text) {
    const std::vector<std::int32_t> ids = tok.encode(text);
    const std::string repaired = dsserve::tokenizer::to_utf8_lossy(text);
    check(tok.decode(ids, false) == repaired);
    check(streamed(tok, ids, false) == repaired);
    check(tok.encode(text, true) == ids);  // V3.2 adds neither BOS nor EOS
    for (std::int32_t id : ids) {
        check(tok.has_id(id));
    }
}

void fuzz_ids(const Tokenizer& tok, const std::uint8_t* data, std::size_t size) {
    std::vector<std::int32_t> ids(size / 4);
    std::memcpy(ids.data(), data, ids.size() * 4);
    for (bool skip : {false, true}) {
        const std::string text = tok.decode(ids, skip);
        check(dsserve::tokenizer::is_valid_utf8(text));
        check(streamed(tok, ids, skip) == text);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const Tokenizer& tok = tokenizer();
    if (data[0] % 2 == 0) {
        fuzz_text(tok, std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
    } else {
        fuzz_ids(tok, data + 1, size - 1);
    }
    return 0;
}
