#include "bench/dataset.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "test_codec.h"

namespace dsserve::bench {
namespace {

using testing::ByteCodec;

const std::string kShareGpt = DSSERVE_DATA_DIR "/datasets/sharegpt/ShareGPT_V3_filtered_500.json";

TEST(ShareGpt, LoadsTheRepositoryCopy) {
    const auto prompts = load_sharegpt_prompts(kShareGpt);
    EXPECT_EQ(prompts.size(), 500u);
    for (const auto& p : prompts) {
        EXPECT_FALSE(p.empty());
    }
}

TEST(RandomDataset, LengthsFollowTheRangeRatio) {
    NumpyRandom rng(1);
    const auto lens = draw_lengths(rng, 100, 0.5, 1000);
    std::set<std::int64_t> seen(lens.begin(), lens.end());
    EXPECT_EQ(*seen.begin(), 50);
    EXPECT_EQ(*seen.rbegin(), 100);
    NumpyRandom fixed(1);
    for (auto v : draw_lengths(fixed, 100, 1.0, 10)) {
        EXPECT_EQ(v, 100);
    }
    NumpyRandom zero(1);
    for (auto v : draw_lengths(zero, 3, 0.0, 100)) {
        EXPECT_GE(v, 1);  // the lower bound is at least 1 even for ratio 0
    }
    EXPECT_THROW(draw_lengths(zero, 3, 1.5, 1), Error);
}

TEST(RandomDataset, PromptsHaveExactlyTheDrawnTokenCount) {
    ByteCodec codec;
    const std::vector<std::string> source = {"ab", "hello world, this is long enough"};
    NumpyRandom rng(3);
    const auto rows = sample_random_requests(source, codec, {40, 8, 0.25}, 20, rng, 1);
    ASSERT_EQ(rows.size(), 20u);
    for (const auto& r : rows) {
        EXPECT_EQ(static_cast<std::int64_t>(codec.encode(r.prompt).size()), r.prompt_len);
        EXPECT_GE(r.prompt_len, 10);
        EXPECT_LE(r.prompt_len, 40);
        EXPECT_GE(r.output_len, 2);
        EXPECT_LE(r.output_len, 8);
        // Cut or repeated from one source prompt.
        const bool from_short = r.prompt.substr(0, 2) == "ab";
        const std::string& src = from_short ? source[0] : source[1];
        for (std::size_t i = 0; i < r.prompt.size(); ++i) {
            ASSERT_EQ(r.prompt[i], src[i % src.size()]);
        }
    }
    // Same seeds, same workload.
    NumpyRandom again(3);
    const auto rows2 = sample_random_requests(source, codec, {40, 8, 0.25}, 20, again, 1);
    for (std::size_t i = 0; i < rows.size(); ++i) {
        EXPECT_EQ(rows[i].prompt, rows2[i].prompt);
    }
}

// bench_serving calls random.seed(seed) and random.shuffle(conversations); with the same seed the
// prompts must come in the same order, or the two tools send different text.
TEST(RandomDataset, PromptsInTheOrderOfPythonsShuffle) {
    const Json golden =
        Json::parse(read_file(DSSERVE_GOLDEN_DIR "/bench/python_random.json"))["shuffle"];
    const auto it = std::find_if(golden.begin(), golden.end(),
                                 [](const Json& c) { return c["seed"] == 0 && c["n"] == 10; });
    ASSERT_NE(it, golden.end());
    std::vector<std::string> source;
    for (int i = 0; i < 10; ++i) {
        source.push_back("prompt " + std::to_string(i) + ".");
    }
    ByteCodec codec;
    NumpyRandom rng(0);
    const auto rows = sample_random_requests(source, codec, {9, 4, 1.0}, 10, rng, 0);
    NumpyRandom rng2(0);
    const auto shared = sample_sharegpt_requests(source, codec, 10, 4, {}, rng2, 0);
    for (std::size_t i = 0; i < 10; ++i) {
        const std::string& want = source[(*it)["order"][i].get<std::size_t>()];
        EXPECT_EQ(rows[i].prompt, want.substr(0, 9)) << i;
        EXPECT_EQ(shared[i].prompt, want) << i;
    }
}

TEST(ShareGpt, SingleTurnConversationsSkippedOnlyInAFileWithReplies) {
    const std::filesystem::path dir = ::testing::TempDir();
    const auto conv = [](std::vector<std::string> turns) {
        Json c = Json::array();
        for (const auto& t : turns) {
            c.push_back({{"from", "human"}, {"value", t}});
        }
        return Json{{"conversations", c}};
    };
    write_file(dir / "replies.json",
               Json::array({conv({"a", "ra"}), conv({"b"}), conv({"c", "rc"})}).dump());
    EXPECT_EQ(load_sharegpt_prompts(dir / "replies.json"), (std::vector<std::string>{"a", "c"}));
    write_file(dir / "firsts.json", Json::array({conv({"a"}), conv({"b"})}).dump());
    EXPECT_EQ(load_sharegpt_prompts(dir / "firsts.json"), (std::vector<std::string>{"a", "b"}));
}

TEST(ShareGptDataset, OutputLengthsFixedOrDrawnAndWrapsAround) {
    ByteCodec codec;
    const std::vector<std::string> source = {"x", "abc", "defg"};
    NumpyRandom rng(1);
    auto rows = sample_sharegpt_requests(source, codec, 5, 7, {}, rng, 2);
    ASSERT_EQ(rows.size(), 5u);
    for (const auto& r : rows) {
        EXPECT_NE(r.prompt, "x");  // under 2 tokens: skipped
        EXPECT_EQ(r.prompt_len, static_cast<std::int64_t>(r.prompt.size()));
        EXPECT_EQ(r.output_len, 7);
    }
    NumpyRandom rng2(1);
    rows = sample_sharegpt_requests(source, codec, 50, std::nullopt, {0, 12, 0.5}, rng2, 2);
    for (const auto& r : rows) {
        EXPECT_GE(r.output_len, 6);
        EXPECT_LE(r.output_len, 12);
    }
    NumpyRandom rng3(1);
    EXPECT_THROW(sample_sharegpt_requests({"a", "b"}, codec, 1, 5, {}, rng3, 2), Error);
}

}  // namespace
}  // namespace dsserve::bench
