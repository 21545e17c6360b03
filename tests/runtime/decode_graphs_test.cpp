// The decode-graph runner's host side: which batch sizes it records, which key bound a step
// falls in, and that it leaves every step to the model where the backend records none (the CPU).
// The GPU side is in cuda_model_test.cpp and engine_test.cpp (runtime_cuda_test).
#include "runtime/decode_graphs.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "model/make_model.h"
#include "runtime/model_runner.h"

namespace dsserve::runtime {
namespace {

TEST(DecodeGraphs, BatchSizesStepByEightAndEndAtTheMaximum) {
    EXPECT_EQ(DecodeGraphs::batch_sizes(1), (std::vector<int>{1}));
    EXPECT_EQ(DecodeGraphs::batch_sizes(4), (std::vector<int>{1, 2, 4}));
    EXPECT_EQ(DecodeGraphs::batch_sizes(6), (std::vector<int>{1, 2, 4, 6}));
    EXPECT_EQ(DecodeGraphs::batch_sizes(8), (std::vector<int>{1, 2, 4, 8}));
    EXPECT_EQ(DecodeGraphs::batch_sizes(30), (std::vector<int>{1, 2, 4, 8, 16, 24, 30}));
    EXPECT_EQ(DecodeGraphs::batch_sizes(256).size(), 35u);
}

// Powers of two from 64; DeepSeek-V3.2's top-k (2048) is one, so the bounds stay those; another
// top-k splits its power of two, so that steps that score and steps that do not never share a
// key.
TEST(DecodeGraphs, KeyBoundsArePowersOfTwoSplitAtTopK) {
    struct Case {
        int visible, top_k, bound;
    };
    const Case cases[] = {{1, 0, 64},         {64, 0, 64},        {65, 0, 128},    {3000, 0, 4096},
                          {2048, 2048, 2048}, {2049, 2048, 4096}, {100, 100, 100}, {99, 100, 100},
                          {101, 100, 128},    {20, 100, 64},      {5, 8, 8},       {20, 8, 64}};
    for (const Case& c : cases) {
        EXPECT_EQ(DecodeGraphs::key_bound(c.visible, c.top_k), c.bound)
            << c.visible << " positions, top-k " << c.top_k;
    }
}

TEST(DecodeGraphs, TheCpuBackendRecordsNothing) {
    namespace fs = std::filesystem;
    const fs::path dir =
        fs::temp_directory_path() / ("dsserve_decode_graphs_test_" + std::to_string(::getpid()));
    model::MakeModelOptions o;
    o.output = dir;
    o.config = model::preset_config("tiny", 1);
    o.config["vocab_size"] = 512;
    model::make_model(o);
    {
        ModelOptions mo;
        mo.model_path = dir;
        LoadedModel loaded(mo);
        model::KvCache cache = loaded.model().make_cache(17);
        std::vector<std::int32_t> slots(16);
        for (int i = 0; i < 16; ++i) {
            slots[static_cast<std::size_t>(i)] = i;
        }
        DecodeGraphs graphs(loaded.model(), 4, 16);
        model::ForwardBatch b;
        b.tokens = {3};
        b.seqs.push_back({0, 1, slots});
        EXPECT_FALSE(graphs.forward(b, cache).has_value());
        EXPECT_EQ(graphs.counts().run + graphs.counts().recorded + graphs.counts().replayed, 0);
        EXPECT_THROW(DecodeGraphs(loaded.model(), 0, 16), std::exception);
    }
    fs::remove_all(dir);
}

}  // namespace
}  // namespace dsserve::runtime
