#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "core/error.h"
#include "core/file.h"
#include "test_data.h"
#include "tokenizer/utf8.h"

namespace dsserve::tokenizer {
namespace {

using testing::case_input;
using testing::golden;
using testing::v32;
using Ids = std::vector<std::int32_t>;

std::string tokenizer_json() {
    return read_file(testing::v32_dir() / "tokenizer.json");
}
std::string config_json() {
    return read_file(testing::v32_dir() / "tokenizer_config.json");
}

TEST(TokenizerTest, GoldenEncodeMatchesHuggingFace) {
    const Json& cases = golden("encode.json").at("cases");
    ASSERT_GE(cases.size(), 300u);
    std::size_t failures = 0;
    for (const Json& c : cases) {
        const std::string text = case_input(c);
        const std::string name = c.at("name").get<std::string>();
        const Ids expected = c.at("ids").get<Ids>();
        const Ids got = v32().encode(text);
        const Ids got_special = v32().encode(text, true);
        if (got != expected) {
            ADD_FAILURE() << "encode differs for " << name;
            ++failures;
        }
        if (got_special != c.at("ids_special").get<Ids>()) {
            ADD_FAILURE() << "encode with special tokens differs for " << name;
            ++failures;
        }
        EXPECT_EQ(v32().decode(expected, false), c.at("decoded_keep").get<std::string>()) << name;
        EXPECT_EQ(v32().decode(expected, true), c.at("decoded_skip").get<std::string>()) << name;
        // Byte-level BPE loses nothing: decoding gives back the (repaired) text.
        EXPECT_EQ(v32().decode(expected, false), to_utf8_lossy(text)) << name;
        ASSERT_LT(failures, 10u) << "stopping after 10 failures";
    }
}

TEST(TokenizerTest, GoldenDecodeMatchesHuggingFace) {
    const Json& cases = golden("decode.json").at("cases");
    for (const Json& c : cases) {
        Ids ids;
        if (c.contains("ids")) {
            ids = c.at("ids").get<Ids>();
        } else {
            const auto first = c.at("first").get<std::int32_t>();
            for (std::int32_t i = 0; i < c.at("count").get<std::int32_t>(); ++i) {
                ids.push_back(first + i);
            }
        }
        const std::string keep = c.at("keep").get<std::string>();
        const std::string skip = c.contains("skip") ? c.at("skip").get<std::string>() : keep;
        ASSERT_EQ(v32().decode(ids, false), keep) << c.dump().substr(0, 200);
        ASSERT_EQ(v32().decode(ids, true), skip) << c.dump().substr(0, 200);
    }
}

// The tokenizer with lstrip/rstrip/single_word set on some added tokens, edited the way the
// golden generator edited it.
TEST(TokenizerTest, GoldenAddedTokenFlagsMatchHuggingFace) {
    const Json& flags = golden("flags.json");
    nlohmann::json spec = nlohmann::json::parse(tokenizer_json());
    for (const Json& edit : flags.at("edits")) {
        for (auto& t : spec.at("added_tokens")) {
            if (t.at("id") == edit.at("id")) {
                for (const auto& [key, value] : edit.items()) {
                    t[key] = value;
                }
            }
        }
    }
    const Tokenizer tok = Tokenizer::from_json(spec.dump(), config_json());
    for (const Json& c : flags.at("cases")) {
        const std::string text = c.at("text").get<std::string>();
        EXPECT_EQ(tok.encode(text), c.at("ids").get<Ids>()) << text;
    }
}

TEST(TokenizerTest, DeepSeekV32Vocabulary) {
    const Tokenizer& tok = v32();
    EXPECT_EQ(tok.vocab_size(), 128815u);
    EXPECT_EQ(tok.bos_id(), 0);
    EXPECT_EQ(tok.eos_id(), 1);
    EXPECT_FALSE(tok.add_bos_token());
    EXPECT_FALSE(tok.add_eos_token());
    const std::pair<std::int32_t, const char*> expected[] = {
        {0, "<｜begin▁of▁sentence｜>"},
        {1, "<｜end▁of▁sentence｜>"},
        {2, "<｜▁pad▁｜>"},
        {128796, "<｜search▁begin｜>"},
        {128797, "<｜search▁end｜>"},
        {128798, "<think>"},
        {128799, "</think>"},
        {128800, "<｜fim▁hole｜>"},
        {128803, "<｜User｜>"},
        {128804, "<｜Assistant｜>"},
        {128805, "<|EOT|>"},
        {128806, "<｜tool▁calls▁begin｜>"},
        {128808, "<｜tool▁call▁begin｜>"},
        {128814, "<｜tool▁sep｜>"},
    };
    for (const auto& [id, content] : expected) {
        EXPECT_EQ(tok.token_to_id(content), id) << content;
        EXPECT_EQ(tok.token_bytes(id), content) << id;
        EXPECT_EQ(tok.encode(content), Ids{id}) << content;
    }
    for (std::int32_t id : {0, 1, 2, 128000, 128795, 128805}) {
        EXPECT_TRUE(tok.is_special(id)) << id;
    }
    for (std::int32_t id : {3, 128796, 128797, 128798, 128799, 128803, 128804, 128814}) {
        EXPECT_FALSE(tok.is_special(id)) << id;
    }
    EXPECT_EQ(tok.token_to_id("Ġthe").has_value(), true);
    EXPECT_EQ(tok.token_bytes(*tok.token_to_id("Ġthe")), " the");
    EXPECT_EQ(tok.token_to_id("no such token"), std::nullopt);
    EXPECT_EQ(tok.config().at("tokenizer_class"), "LlamaTokenizerFast");
}

TEST(TokenizerTest, UnknownIdsAreSkippedOrRejected) {
    const Tokenizer& tok = v32();
    const Ids ids = {-1, 128815, 1 << 30, *tok.token_to_id("hi")};
    EXPECT_EQ(tok.decode(ids), "hi");
    EXPECT_THROW(tok.token_bytes(-1), Error);
    EXPECT_THROW(tok.token_bytes(128815), Error);
    EXPECT_FALSE(tok.is_special(-5));
    EXPECT_FALSE(tok.has_id(128815));
    EXPECT_TRUE(tok.has_id(128814));
}

TEST(TokenizerTest, DecodeSkipsSpecialTokensButKeepsThinkTags) {
    const Tokenizer& tok = v32();
    const Ids ids = tok.encode("<｜begin▁of▁sentence｜><think>x</think>y<｜end▁of▁sentence｜>");
    EXPECT_EQ(ids.front(), 0);
    EXPECT_EQ(ids.back(), 1);
    EXPECT_EQ(tok.decode(ids), "<think>x</think>y");
    EXPECT_EQ(tok.decode(ids, false),
              "<｜begin▁of▁sentence｜><think>x</think>y<｜end▁of▁sentence｜>");
}

// Ill-formed UTF-8 is encoded as its U+FFFD repair (documented in tokenizer.h).
TEST(TokenizerTest, IllFormedUtf8EncodesAsReplacementCharacters) {
    const Tokenizer& tok = v32();
    for (const std::string& bytes :
         {std::string("\xFF"), std::string("ab\x80 cd"), std::string("\xE4\xBD"),
          std::string("<think>\xED\xA0\x80</think>"), std::string("x\0y\xC0", 4)}) {
        EXPECT_EQ(tok.encode(bytes), tok.encode(to_utf8_lossy(bytes)));
        EXPECT_EQ(tok.decode(tok.encode(bytes)), to_utf8_lossy(bytes));
    }
    EXPECT_EQ(tok.encode("\xFF"), tok.encode("\uFFFD"));
}

TEST(TokenizerTest, AddBosTokenFollowsTheConfig) {
    // DeepSeek-V3's config asks for BOS; V3.2's does not.
    const std::string v3_config = read_file(testing::v32_dir() / "tokenizer_config.v3.json");
    const Tokenizer v3 = Tokenizer::from_json(tokenizer_json(), v3_config);
    EXPECT_TRUE(v3.add_bos_token());
    const Ids plain = v3.encode("Hello world");
    Ids with_bos = {0};
    with_bos.insert(with_bos.end(), plain.begin(), plain.end());
    EXPECT_EQ(v3.encode("Hello world", true), with_bos);
    EXPECT_EQ(v32().encode("Hello world", true), plain);
    EXPECT_TRUE(v3.config().contains("chat_template"));
}

TEST(TokenizerTest, AddEosTokenFollowsTheConfig) {
    auto config = nlohmann::json::parse(config_json());
    config["add_eos_token"] = true;
    config["eos_token"] = "<｜end▁of▁sentence｜>";  // the plain-string form
    const Tokenizer tok =
        Tokenizer::from_json(testing::tiny_tokenizer_spec().dump(), config.dump());
    EXPECT_EQ(tok.encode("Hello"), (Ids{262}));
    EXPECT_EQ(tok.encode("Hello", true), (Ids{262, 1}));
    config["add_bos_token"] = true;
    const Tokenizer both =
        Tokenizer::from_json(testing::tiny_tokenizer_spec().dump(), config.dump());
    EXPECT_EQ(both.encode("Hello<think>", true), (Ids{0, 262, 2, 1}));
    config["bos_token"] = "<｜nope｜>";
    EXPECT_THROW(Tokenizer::from_json(testing::tiny_tokenizer_spec().dump(), config.dump()), Error);
}

TEST(TokenizerTest, ConcurrentEncodingGivesTheSameIds) {
    const Json& cases = golden("encode.json").at("cases");
    std::vector<std::string> texts;
    std::vector<Ids> expected;
    for (const Json& c : cases) {
        texts.push_back(case_input(c));
        expected.push_back(c.at("ids").get<Ids>());
    }
    // A fresh tokenizer, so that the threads fill its empty cache together.
    const Tokenizer tok = Tokenizer::from_json(tokenizer_json(), config_json());
    std::atomic<int> mismatches{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&, t] {
            for (std::size_t round = 0; round < 2; ++round) {
                for (std::size_t i = 0; i < texts.size(); ++i) {
                    const std::size_t k = (i * 7 + t * 31) % texts.size();
                    if (tok.encode(texts[k]) != expected[k]) {
                        ++mismatches;
                    }
                    if (tok.decode(expected[k], false) != to_utf8_lossy(texts[k])) {
                        ++mismatches;
                    }
                }
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(mismatches.load(), 0);
}

TEST(TokenizerTest, RejectsComponentsItDoesNotImplement) {
    const auto base = testing::tiny_tokenizer_spec();
    EXPECT_NO_THROW(Tokenizer::from_json(base.dump(), config_json()));
    const auto rejected = [&](auto edit) {
        auto spec = base;
        edit(spec);
        EXPECT_THROW(Tokenizer::from_json(spec.dump(), config_json()), Error);
    };
    rejected([](nlohmann::json& j) { j["normalizer"] = {{"type", "NFC"}}; });
    rejected([](nlohmann::json& j) {
        j["normalizer"]["normalizers"].push_back({{"type", "Lowercase"}});
    });
    rejected([](nlohmann::json& j) { j["post_processor"] = {{"type", "TemplateProcessing"}}; });
    rejected([](nlohmann::json& j) { j["decoder"] = {{"type", "WordPiece"}}; });
    rejected([](nlohmann::json& j) { j["truncation"] = {{"max_length", 8}}; });
    rejected([](nlohmann::json& j) {
        j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\d{1,3}";
    });
    rejected([](nlohmann::json& j) { j["model"]["type"] = "Unigram"; });
    EXPECT_THROW(Tokenizer::from_json("{not json", config_json()), Error);
    EXPECT_THROW(Tokenizer::from_json(tokenizer_json(), "[]"), Error);
    EXPECT_THROW(Tokenizer::load(testing::v32_dir() / "missing"), Error);
}

}  // namespace
}  // namespace dsserve::tokenizer
