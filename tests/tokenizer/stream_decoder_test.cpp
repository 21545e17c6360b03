#include <gtest/gtest.h>

#include <random>

#include "test_data.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace dsserve::tokenizer {
namespace {

using testing::v32;
using Ids = std::vector<std::int32_t>;

std::string stream(const Tokenizer& tok, const Ids& ids, bool skip) {
    StreamDecoder decoder(tok, skip);
    std::string out;
    for (std::int32_t id : ids) {
        out += decoder.push(id);
    }
    return out + decoder.flush();
}

TEST(StreamDecoderTest, OneIdAtATimeEqualsDecode) {
    const Json& cases = testing::golden("encode.json").at("cases");
    for (const Json& c : cases) {
        const Ids ids = c.at("ids").get<Ids>();
        ASSERT_EQ(stream(v32(), ids, false), v32().decode(ids, false)) << c.at("name");
        ASSERT_EQ(stream(v32(), ids, true), v32().decode(ids, true)) << c.at("name");
    }
}

TEST(StreamDecoderTest, RandomIdsEqualDecode) {
    // Random ids make plenty of broken and partial UTF-8.
    std::mt19937 rng(11);
    for (int round = 0; round < 500; ++round) {
        Ids ids;
        const int n = 1 + static_cast<int>(rng() % 30);
        for (int i = 0; i < n; ++i) {
            ids.push_back(static_cast<std::int32_t>(rng() % 128900) - 20);
        }
        ASSERT_EQ(stream(v32(), ids, true), v32().decode(ids, true));
        ASSERT_EQ(stream(v32(), ids, false), v32().decode(ids, false));
    }
}

TEST(StreamDecoderTest, HoldsBackSplitCharactersUntilComplete) {
    const Tokenizer& tok = v32();
    // Find a character whose bytes BPE spreads over several tokens.
    const std::string text = "😀";
    const Ids ids = tok.encode(text);
    ASSERT_GT(ids.size(), 1u) << "expected the emoji to span several tokens";
    StreamDecoder decoder(tok, true);
    for (std::size_t i = 0; i + 1 < ids.size(); ++i) {
        EXPECT_EQ(decoder.push(ids[i]), "") << i;
        EXPECT_GT(decoder.pending_bytes(), 0u);
    }
    EXPECT_EQ(decoder.push(ids.back()), text);
    EXPECT_EQ(decoder.pending_bytes(), 0u);
    EXPECT_EQ(decoder.flush(), "");
}

TEST(StreamDecoderTest, IncompleteTailFlushesAsReplacementCharacter) {
    const Tokenizer& tok = v32();
    const Ids ids = tok.encode("a😀");
    StreamDecoder decoder(tok, true);
    std::string out = decoder.push(ids[0]);
    out += decoder.push(ids[1]);
    EXPECT_EQ(out, "a");
    EXPECT_EQ(decoder.flush(), std::string(kReplacementChar));
    EXPECT_EQ(decoder.flush(), "");
}

TEST(StreamDecoderTest, SkipsBosAndEosButKeepsThink) {
    const Tokenizer& tok = v32();
    const Ids ids = {0, 128798, *tok.token_to_id("hi"), 128799, 1};
    StreamDecoder skipping(tok, true);
    std::string out;
    for (std::int32_t id : ids) {
        out += skipping.push(id);
    }
    EXPECT_EQ(out, "<think>hi</think>");
    EXPECT_EQ(stream(tok, ids, false),
              "<｜begin▁of▁sentence｜><think>hi</think><｜end▁of▁sentence｜>");
}

}  // namespace
}  // namespace dsserve::tokenizer
