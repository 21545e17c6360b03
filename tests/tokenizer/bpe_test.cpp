#include "tokenizer/bpe.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "tokenizer/byte_level.h"

namespace dsserve::tokenizer {
namespace {

// A byte-level model: ids 0..255 are the byte symbols, then one id per merge result, with the
// merges ranked in the order given.
nlohmann::json model_json(const std::vector<std::pair<std::string, std::string>>& merges) {
    nlohmann::json vocab = nlohmann::json::object();
    for (int b = 0; b < 256; ++b) {
        vocab[bytes_to_symbols(std::string(1, static_cast<char>(b)))] = b;
    }
    nlohmann::json merge_list = nlohmann::json::array();
    int next = 256;
    for (const auto& [left, right] : merges) {
        if (!vocab.contains(left + right)) {
            vocab[left + right] = next++;
        }
        merge_list.push_back(left + " " + right);
    }
    return {{"type", "BPE"}, {"vocab", vocab}, {"merges", merge_list}};
}

std::vector<std::string> encode(const BpeModel& model, std::string_view bytes) {
    std::vector<std::int32_t> ids;
    model.encode_piece(bytes, ids);
    std::vector<std::string> tokens;
    for (std::int32_t id : ids) {
        tokens.push_back(model.token(id));
    }
    return tokens;
}

using Tokens = std::vector<std::string>;

TEST(MergeTableTest, FindsInsertedPairsAndKeepsTheLaterDuplicate) {
    MergeTable table;
    table.reserve(3);
    table.insert(1, 2, {0, 10});
    table.insert(2, 1, {1, 11});
    table.insert(1, 2, {2, 12});
    ASSERT_NE(table.find(1, 2), nullptr);
    EXPECT_EQ(table.find(1, 2)->rank, 2);
    EXPECT_EQ(table.find(1, 2)->merged_id, 12);
    EXPECT_EQ(table.find(2, 1)->merged_id, 11);
    EXPECT_EQ(table.find(2, 2), nullptr);
    EXPECT_EQ(table.size(), 2u);
}

TEST(PieceCacheTest, RemembersShortPiecesWithinItsBound) {
    PieceCache cache;
    std::vector<std::int32_t> out;
    EXPECT_FALSE(cache.lookup("hello", out));
    const std::int32_t ids[] = {7, 8, 9};
    cache.insert("hello", ids, 3);
    ASSERT_TRUE(cache.lookup("hello", out));
    EXPECT_EQ(out, (std::vector<std::int32_t>{7, 8, 9}));
    EXPECT_FALSE(cache.lookup("hellp", out));
    EXPECT_FALSE(cache.lookup("hell", out));
    // Too long, or too many ids: not kept.
    const std::string long_piece(PieceCache::kMaxPieceBytes + 1, 'x');
    cache.insert(long_piece, ids, 1);
    EXPECT_FALSE(cache.lookup(long_piece, out));
    const std::vector<std::int32_t> many(PieceCache::kMaxIds + 1, 1);
    cache.insert("many", many.data(), many.size());
    EXPECT_FALSE(cache.lookup("many", out));
    // However many pieces go in, the table keeps a fixed number of entries.
    for (int i = 0; i < 200000; ++i) {
        const std::int32_t id = i;
        cache.insert(std::to_string(i), &id, 1);
    }
    EXPECT_LE(cache.size(), 32u * 2048u);
    std::size_t hits = 0;
    for (int i = 0; i < 200000; ++i) {
        out.clear();
        if (cache.lookup(std::to_string(i), out)) {
            ++hits;
            ASSERT_EQ(out, std::vector<std::int32_t>{i});
        }
    }
    EXPECT_GT(hits, 0u);
    EXPECT_LE(hits, cache.size());
}

TEST(BpeModelTest, MergesLowestRankFirst) {
    // "b c" outranks "a b", so "abc" becomes a + bc, not ab + c.
    const auto model = BpeModel::from_json(model_json({{"b", "c"}, {"a", "b"}, {"ab", "c"}}));
    EXPECT_EQ(encode(*model, "abc"), (Tokens{"a", "bc"}));
    EXPECT_EQ(encode(*model, "ab"), (Tokens{"ab"}));
    EXPECT_EQ(encode(*model, "x"), (Tokens{"x"}));
}

TEST(BpeModelTest, TiesGoToTheLeftmostPair) {
    const auto model = BpeModel::from_json(model_json({{"a", "a"}}));
    EXPECT_EQ(encode(*model, "aaa"), (Tokens{"aa", "a"}));
    EXPECT_EQ(encode(*model, "aaaaa"), (Tokens{"aa", "aa", "a"}));
}

TEST(BpeModelTest, LongPiecesMergeLikeShortOnes) {
    // Over 128 bytes the heap-based loop runs; both must give the same tokens.
    const auto model = BpeModel::from_json(
        model_json({{"a", "a"}, {"aa", "aa"}, {"Ġ", "a"}, {"b", "a"}, {"aaaa", "b"}}));
    std::string text;
    for (int i = 0; i < 60; ++i) {
        text += i % 3 == 0 ? "aaaab" : (i % 3 == 1 ? " a" : "baaa");
    }
    ASSERT_GT(text.size(), 128u);
    std::vector<std::int32_t> whole;
    model->encode_piece_uncached(text, whole);
    // The same text cut where no merge can cross (no merge involves "b" on the left of "a"
    // except "b a", and no merge has "a" + "Ġ"): before each space.
    std::vector<std::int32_t> pieces;
    std::size_t start = 0;
    for (std::size_t i = 1; i <= text.size(); ++i) {
        if (i == text.size() || text[i] == ' ') {
            model->encode_piece_uncached(std::string_view(text).substr(start, i - start), pieces);
            start = i;
        }
    }
    EXPECT_EQ(whole, pieces);
    std::vector<std::int32_t> long_run;
    model->encode_piece_uncached(std::string(200, 'a'), long_run);
    EXPECT_EQ(long_run.size(), 50u);
    EXPECT_EQ(model->token(long_run[0]), "aaaa");
}

TEST(BpeModelTest, CachedAndUncachedAgree) {
    const auto model = BpeModel::from_json(model_json({{"a", "b"}, {"ab", "c"}, {"Ġ", "ab"}}));
    for (const std::string text : {"abc", " ab", "abcabc", "cab", "abc"}) {
        std::vector<std::int32_t> cached, uncached;
        model->encode_piece(text, cached);
        model->encode_piece(text, cached);  // the second time from the cache
        model->encode_piece_uncached(text, uncached);
        model->encode_piece_uncached(text, uncached);
        EXPECT_EQ(cached, uncached) << text;
    }
}

TEST(BpeModelTest, RejectsWhatItDoesNotImplement) {
    auto j = model_json({});
    j["byte_fallback"] = true;
    EXPECT_THROW(BpeModel::from_json(j), Error);
    j = model_json({});
    j["dropout"] = 0.1;
    EXPECT_THROW(BpeModel::from_json(j), Error);
    j = model_json({});
    j["type"] = "WordPiece";
    EXPECT_THROW(BpeModel::from_json(j), Error);
    j = model_json({});
    j["merges"].push_back("a zz");  // zz is not in the vocab
    EXPECT_THROW(BpeModel::from_json(j), Error);
    j = model_json({});
    j["vocab"].erase("Ġ");  // a byte without its symbol
    EXPECT_THROW(BpeModel::from_json(j), Error);
}

TEST(BpeModelTest, MergesMayBeGivenAsPairs) {
    auto j = model_json({{"a", "b"}});
    j["merges"] = nlohmann::json::array({nlohmann::json::array({"a", "b"})});
    const auto model = BpeModel::from_json(j);
    EXPECT_EQ(encode(*model, "ab"), (Tokens{"ab"}));
}

}  // namespace
}  // namespace dsserve::tokenizer
