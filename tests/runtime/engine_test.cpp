// The engine against the one-sequence reference path: whatever the batching, chunking, prefix
// reuse or retraction, greedy outputs equal those of runtime::generate for each prompt alone.
#include "runtime/engine.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <numeric>
#include <random>

#include "model/make_model.h"
#include "runtime/model_runner.h"

namespace dsserve::runtime {
namespace {

namespace fs = std::filesystem;
// The same tests run on the CUDA backend in a second binary (ctest label gpu).
#ifndef DSSERVE_TEST_DEVICE
#define DSSERVE_TEST_DEVICE "cpu"
#endif

class EngineTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = fs::temp_directory_path() / ("dsserve_engine_test_" + std::to_string(::getpid()));
        model::MakeModelOptions o;
        o.output = dir_;
        o.config = model::preset_config("tiny", 2);
        o.config["vocab_size"] = 2048;
        o.config["index_topk"] = 8;
        make_model(o);
        ModelOptions mo;
        mo.model_path = dir_;
        mo.backend.device = DSSERVE_TEST_DEVICE;
        mo.backend.precision = "fp32";  // outputs compared token for token with generate()
        loaded_ = new LoadedModel(mo);
    }
    static void TearDownTestSuite() {
        delete loaded_;
        fs::remove_all(dir_);
    }

    static std::vector<std::int32_t> prompt(int seed, int len) {
        std::vector<std::int32_t> p;
        for (int i = 0; i < len; ++i) {
            p.push_back(2 + (seed * 131 + i * 17) % 2000);
        }
        return p;
    }
    static std::vector<std::int32_t> reference(const std::vector<std::int32_t>& p, int n) {
        GenerateOptions g;
        g.max_new_tokens = n;
        g.sampling.temperature = 0.0f;
        g.ignore_eos = true;
        return generate(loaded_->model(), p, g);
    }

    struct Collected {
        std::vector<std::int32_t> tokens;
        std::vector<TokenLogprob> logprobs;
        RequestOutput last;
        int outputs = 0;
    };

    // Runs requests to completion by stepping on this thread.
    std::map<std::string, Collected> run_all(Engine& engine, std::vector<GenerateRequest> reqs) {
        std::map<std::string, Collected> got;
        for (auto& r : reqs) {
            auto* slot = &got[r.rid];
            r.on_output = [slot](const RequestOutput& out) {
                slot->tokens.insert(slot->tokens.end(), out.new_tokens.begin(),
                                    out.new_tokens.end());
                slot->logprobs.insert(slot->logprobs.end(), out.logprobs.begin(),
                                      out.logprobs.end());
                slot->last = out;
                slot->outputs++;
            };
            engine.submit(std::move(r));
        }
        engine.drain_inbox();
        int guard = 0;
        while (engine.step() && ++guard < 100000) {
        }
        return got;
    }

    static GenerateRequest greedy(std::string rid, std::vector<std::int32_t> ids, int n) {
        GenerateRequest r;
        r.rid = std::move(rid);
        r.input_ids = std::move(ids);
        r.sampling.temperature = 0.0f;
        r.stop.max_new_tokens = n;
        r.stop.ignore_eos = true;
        return r;
    }

    static SchedulerConfig config(int pages, int page_size, int chunk) {
        SchedulerConfig c;
        c.num_pages = pages;
        c.page_size = page_size;
        c.chunked_prefill_size = chunk;
        c.context_length = 4096;
        c.max_running_requests = 64;
        return c;
    }

    static fs::path dir_;
    static LoadedModel* loaded_;
};
fs::path EngineTest::dir_;
LoadedModel* EngineTest::loaded_ = nullptr;

TEST_F(EngineTest, BatchedChunkedAndPagedEqualsOneAtATime) {
    struct Variant {
        int pages, page_size, chunk;
    };
    for (Variant v : {Variant{4096, 1, 4096}, Variant{1024, 4, 7}, Variant{512, 16, 5}}) {
        Engine engine(loaded_->model(), config(v.pages, v.page_size, v.chunk));
        std::vector<GenerateRequest> reqs;
        for (int i = 0; i < 6; ++i) {
            reqs.push_back(greedy("r" + std::to_string(i), prompt(i, 5 + 7 * i), 6 + i));
        }
        auto got = run_all(engine, reqs);
        for (int i = 0; i < 6; ++i) {
            auto& c = got["r" + std::to_string(i)];
            EXPECT_EQ(c.tokens, reference(prompt(i, 5 + 7 * i), 6 + i))
                << "request " << i << " page_size " << v.page_size << " chunk " << v.chunk;
            EXPECT_TRUE(c.last.finished);
            EXPECT_EQ(c.last.reason, FinishReason::kLength);
            EXPECT_EQ(c.last.completion_tokens, 6 + i);
        }
        auto s = engine.stats();
        EXPECT_EQ(s.num_running, 0);
        // Every page is back: either free or held by the prefix cache.
        EXPECT_EQ(s.used_tokens, s.cached_tokens_in_tree);
    }
}

TEST_F(EngineTest, SharedPrefixIsServedFromTheCache) {
    Engine engine(loaded_->model(), config(2048, 1, 4096));
    auto system = prompt(1, 40);
    auto first = system, second = system;
    first.push_back(7);
    second.push_back(9);
    auto a = run_all(engine, {greedy("a", first, 4)});
    auto before = engine.stats().prefill_tokens;
    auto b = run_all(engine, {greedy("b", second, 4)});
    EXPECT_GE(b["b"].last.cached_tokens, 40);
    EXPECT_LE(engine.stats().prefill_tokens - before, 2);  // only the new token (and none cached)
    EXPECT_EQ(b["b"].tokens, reference(second, 4));
    EXPECT_TRUE(engine.flush_cache());
    EXPECT_EQ(engine.stats().cached_tokens_in_tree, 0);
}

TEST_F(EngineTest, RunningOutOfPagesRetractsInsteadOfFailing) {
    // 96 slots for 4 requests that need ~30 each at the end: some must be retracted and resumed.
    // Under the overlap schedule too, whose pending step settles before a plan that may retract.
    for (bool overlap : {false, true}) {
        Engine engine(loaded_->model(), config(96, 1, 4096), 40, true, overlap);
        std::vector<GenerateRequest> reqs;
        for (int i = 0; i < 4; ++i) {
            reqs.push_back(greedy("r" + std::to_string(i), prompt(10 + i, 10), 20));
        }
        auto got = run_all(engine, reqs);
        for (int i = 0; i < 4; ++i) {
            EXPECT_EQ(got["r" + std::to_string(i)].tokens, reference(prompt(10 + i, 10), 20))
                << i << (overlap ? " overlapped" : "");
        }
        EXPECT_GT(engine.stats().retractions, 0);
        EXPECT_EQ(engine.stats().overlapped_steps > 0, overlap);
        EXPECT_EQ(engine.stats().used_tokens, engine.stats().cached_tokens_in_tree);
    }
}

TEST_F(EngineTest, AbortReturnsPagesAndReportsAbort) {
    Engine engine(loaded_->model(), config(512, 1, 4096));
    Collected c;
    auto r = greedy("x", prompt(3, 20), 1000);
    r.on_output = [&](const RequestOutput& out) {
        c.last = out;
        c.outputs++;
    };
    engine.submit(std::move(r));
    engine.drain_inbox();
    for (int i = 0; i < 5; ++i) {
        engine.step();
    }
    EXPECT_GT(engine.stats().used_tokens, engine.stats().cached_tokens_in_tree);
    engine.abort("x");
    engine.drain_inbox();
    engine.step();
    EXPECT_TRUE(c.last.finished);
    EXPECT_EQ(c.last.reason, FinishReason::kAbort);
    EXPECT_EQ(engine.stats().num_running, 0);
    EXPECT_TRUE(engine.flush_cache());
    engine.step();
}

TEST_F(EngineTest, StopTokensMinTokensAndZeroMaxTokens) {
    Engine engine(loaded_->model(), config(1024, 1, 4096));
    auto p = prompt(4, 12);
    auto ref = reference(p, 8);
    // Stop on the 3rd generated token.
    auto stop = greedy("stop", p, 8);
    stop.stop.stop_token_ids = {ref[2]};
    stop.stop.ignore_eos = false;
    auto zero = greedy("zero", p, 0);
    auto got = run_all(engine, {stop, zero});
    EXPECT_EQ(got["stop"].last.reason, FinishReason::kStopToken);
    EXPECT_EQ(got["stop"].last.matched_token, ref[2]);
    std::size_t first = std::find(ref.begin(), ref.end(), ref[2]) - ref.begin();
    EXPECT_EQ(got["stop"].tokens.size(), first + 1);
    EXPECT_TRUE(got["zero"].tokens.empty());
    EXPECT_EQ(got["zero"].last.reason, FinishReason::kLength);
    // min_new_tokens masks the stop token until reached.
    auto min = greedy("min", p, 8);
    min.stop.stop_token_ids = {ref[0]};
    min.stop.min_new_tokens = 3;
    got = run_all(engine, {min});
    EXPECT_GE(got["min"].tokens.size(), 3u);
    EXPECT_NE(got["min"].tokens[0], ref[0]);
}

TEST_F(EngineTest, SeededSamplingIsReproducibleAndThreadedEngineServes) {
    Engine engine(loaded_->model(), config(1024, 1, 4096));
    engine.start();
    std::mutex m;
    std::condition_variable cv;
    std::map<std::string, std::vector<std::int32_t>> out;
    int done = 0;
    for (std::string rid : {"s1", "s2", "s3"}) {
        GenerateRequest r;
        r.rid = rid;
        r.input_ids = prompt(5, 9);
        r.stop.max_new_tokens = 12;
        r.stop.ignore_eos = true;
        r.seed = rid == "s3" ? 2 : 1;
        r.on_output = [&, rid](const RequestOutput& o) {
            std::lock_guard<std::mutex> lock(m);
            out[rid].insert(out[rid].end(), o.new_tokens.begin(), o.new_tokens.end());
            if (o.finished) {
                ++done;
                cv.notify_all();
            }
        };
        engine.submit(std::move(r));
    }
    std::unique_lock<std::mutex> lock(m);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return done == 3; }));
    EXPECT_EQ(out["s1"], out["s2"]);
    EXPECT_NE(out["s1"], out["s3"]);
    lock.unlock();
    engine.stop();
}

// Every second of a step is booked to exactly one of plan, forward, sampling and commit; the
// scheduler's time is plan + commit, and gen throughput appears once a decode-log window closes.
TEST_F(EngineTest, StatsSplitEachStepAndRefreshThroughputPerLogWindow) {
    for (int interval : {3, 1000}) {
        Engine engine(loaded_->model(), config(1024, 1, 4096), interval);
        std::vector<GenerateRequest> reqs;
        for (int i = 0; i < 2; ++i) {
            reqs.push_back(greedy("t" + std::to_string(i), prompt(i, 6), 8));
            reqs.back().sampling.temperature = 1.0f;
            reqs.back().sampling.top_p = 0.9f;
        }
        const auto t0 = std::chrono::steady_clock::now();
        run_all(engine, reqs);
        const double wall =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const auto s = engine.stats();
        EXPECT_EQ(s.decode_tokens, 2 * 7);
        EXPECT_GT(s.plan_seconds, 0.0);
        EXPECT_GT(s.commit_seconds, 0.0);
        EXPECT_GT(s.sample_seconds, 0.0);
        EXPECT_GT(s.forward_seconds, 0.0);
        EXPECT_NEAR(s.schedule_seconds, s.plan_seconds + s.commit_seconds, 1e-9);
        EXPECT_LE(s.schedule_seconds + s.sample_seconds + s.forward_seconds, wall);
        if (interval == 3) {
            EXPECT_GT(s.last_gen_throughput, 0.0);
        } else {
            EXPECT_EQ(s.last_gen_throughput, 0.0);
        }
    }
}

// The model's argmax_rows (the host default on the CPU backend, the CUDA kernel on the GPU)
// against the sampler's own argmax, row by row, over rows listed out of order: random rows,
// planted ties, -inf and NaN, in calls of several row counts.
TEST_F(EngineTest, ArgmaxRowsEqualsTheSamplersArgmax) {
    model::Ops& ops = loaded_->model().ops();
    const float inf = std::numeric_limits<float>::infinity();
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 2.0f);
    for (int vocab : {2048, 3001, 20000}) {  // the last split across blocks on the GPU
        model::Tensor logits(40, vocab);
        for (float& v : logits.data) {
            v = nd(rng);
        }
        for (std::int64_t r = 0; r < 20; ++r) {  // the best value twice; the lower index wins
            logits.row(r)[(r * 37) % vocab] = 50.0f;
            logits.row(r)[(r * 37 + 1 + r * r) % vocab] = 50.0f;
        }
        std::fill_n(logits.row(20), vocab, -inf);
        logits.row(21)[0] = std::numeric_limits<float>::quiet_NaN();
        logits.row(22)[5] = std::numeric_limits<float>::quiet_NaN();
        logits.row(22)[6] = 60.0f;
        std::fill_n(logits.row(23), vocab, 1.0f);
        std::vector<std::int64_t> rows(40);
        std::iota(rows.rbegin(), rows.rend(), 0);
        rows.erase(rows.begin() + 3);
        model::Tensor d = logits;
        ops.to_device(d);
        // Calls of different row counts in turn: a split argmax's scratch must not carry one
        // call's state into the next.
        for (std::size_t n : {rows.size(), std::size_t{1}, std::size_t{4}, rows.size()}) {
            const std::span<const std::int64_t> some(rows.data(), n);
            const std::vector<std::int32_t> got = ops.argmax_rows(d, some);
            ASSERT_EQ(got.size(), n);
            for (std::size_t i = 0; i < n; ++i) {
                EXPECT_EQ(got[i], argmax({logits.row(rows[i]), static_cast<std::size_t>(vocab)}))
                    << "row " << rows[i] << ", vocab " << vocab << ", " << n << " rows";
            }
        }
    }
}

// The engine's two sampling paths give the same tokens and logprobs for every kind of request
// in one batch: greedy rows picked by Ops::argmax_rows, plain rows at temperature > 0 drawn by
// Ops::sample_rows (on the CPU backend, which has no such kernel, copied and picked on the host
// with the uniform already drawn), the rest copied by Ops::rows_to_host and sampled on the host.
// Small chunks put rows that sample next to rows that do not.
TEST_F(EngineTest, DeviceSamplingPicksTheHostPathsTokens) {
    constexpr std::int32_t kBiased = 1234;
    const auto banned = reference(prompt(33, 9), 1)[0];
    auto requests = [&] {
        std::vector<GenerateRequest> reqs;
        for (int i = 0; i < 5; ++i) {
            reqs.push_back(greedy("g" + std::to_string(i), prompt(20 + i, 3 + 9 * i), 10));
        }
        auto logprobs = greedy("logprobs", prompt(30, 11), 8);
        logprobs.return_logprob = true;
        logprobs.top_logprobs = 3;
        auto penalty = greedy("penalty", prompt(31, 13), 10);
        penalty.sampling.repetition_penalty = 1.3f;
        penalty.sampling.frequency_penalty = 0.5f;
        auto bias = greedy("bias", prompt(32, 7), 6);
        bias.sampling.logit_bias = {{kBiased, 100.0f}};
        auto min = greedy("min", prompt(33, 9), 6);
        min.stop.stop_token_ids = {banned};
        min.stop.min_new_tokens = 3;
        auto hot = greedy("hot", prompt(34, 10), 10);
        hot.sampling.temperature = 0.8f;
        hot.sampling.top_p = 0.9f;
        hot.seed = 7;
        auto top1 = greedy("top1", prompt(35, 8), 10);
        top1.sampling.temperature = 1.0f;
        top1.sampling.top_k = 1;
        auto cut = greedy("cut", prompt(36, 12), 10);
        cut.sampling.temperature = 1.2f;
        cut.sampling.top_k = 40;
        cut.sampling.min_p = 0.05f;
        cut.seed = 8;
        auto warm = greedy("warm", prompt(37, 5), 10);
        warm.sampling.temperature = 1.0f;
        warm.seed = 9;
        auto hot_logprobs = greedy("hot_logprobs", prompt(38, 6), 6);
        hot_logprobs.sampling.temperature = 0.9f;
        hot_logprobs.seed = 10;
        hot_logprobs.return_logprob = true;
        for (auto* r :
             {&logprobs, &penalty, &bias, &min, &hot, &top1, &cut, &warm, &hot_logprobs}) {
            reqs.push_back(std::move(*r));
        }
        return reqs;
    };
    Engine host(loaded_->model(), config(1024, 4, 7), 40, /*device_sampling=*/false);
    Engine device(loaded_->model(), config(1024, 4, 7), 40, /*device_sampling=*/true);
    auto want = run_all(host, requests());
    auto got = run_all(device, requests());
    ASSERT_EQ(got.size(), want.size());
    for (const auto& [rid, w] : want) {
        const Collected& g = got[rid];
        EXPECT_EQ(g.tokens, w.tokens) << rid;
        EXPECT_EQ(g.last.reason, w.last.reason) << rid;
        ASSERT_EQ(g.logprobs.size(), w.logprobs.size()) << rid;
        for (std::size_t i = 0; i < w.logprobs.size(); ++i) {
            EXPECT_EQ(g.logprobs[i].token, w.logprobs[i].token) << rid << " " << i;
            EXPECT_EQ(g.logprobs[i].logprob, w.logprobs[i].logprob) << rid << " " << i;
            EXPECT_EQ(g.logprobs[i].top, w.logprobs[i].top) << rid << " " << i;
        }
    }
    // The rows that must not be plain argmax were not: the bias decides every token, the ban
    // the first one, and logprobs came back.
    EXPECT_EQ(got["bias"].tokens, std::vector<std::int32_t>(6, kBiased));
    ASSERT_FALSE(got["min"].tokens.empty());
    EXPECT_NE(got["min"].tokens[0], banned);
    EXPECT_EQ(got["logprobs"].logprobs.size(), 8u);
    EXPECT_EQ(got["logprobs"].logprobs[0].top.size(), 3u);
    // And the greedy ones are generate()'s.
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(got["g" + std::to_string(i)].tokens, reference(prompt(20 + i, 3 + 9 * i), 10))
            << i;
    }
    EXPECT_EQ(got["top1"].tokens, reference(prompt(35, 8), 10));
}

// The overlap schedule against one step at a time, on the same requests: the same tokens,
// finish reasons, counts and logprobs, with the steps that could run ahead of their tokens
// having done so. Stops on a token (seen one step late), min_new_tokens, zero max_new_tokens,
// chunked prefill next to decodes, rows the host must sample (logprobs, a penalty) and seeded
// draws (on the device where the backend draws, else on the host) all in one run; then an abort
// while a step is pending. (A full pool: RunningOutOfPagesRetractsInsteadOfFailing.)
TEST_F(EngineTest, OverlapScheduleGivesTheSameTokens) {
    const auto p = prompt(40, 12);
    const auto ref = reference(p, 8);
    auto requests = [&] {
        std::vector<GenerateRequest> reqs;
        for (int i = 0; i < 5; ++i) {
            reqs.push_back(greedy("g" + std::to_string(i), prompt(41 + i, 3 + 9 * i), 4 + 3 * i));
        }
        auto stop = greedy("stop", p, 8);
        stop.stop.stop_token_ids = {ref[2]};
        stop.stop.ignore_eos = false;
        auto min = greedy("min", p, 8);
        min.stop.stop_token_ids = {ref[0]};
        min.stop.min_new_tokens = 2;
        auto zero = greedy("zero", p, 0);
        auto logprobs = greedy("logprobs", prompt(47, 11), 5);
        logprobs.return_logprob = true;
        logprobs.top_logprobs = 2;
        auto penalty = greedy("penalty", prompt(48, 13), 6);
        penalty.sampling.repetition_penalty = 1.3f;
        auto hot = greedy("hot", prompt(49, 10), 9);
        hot.sampling.temperature = 0.8f;
        hot.sampling.top_p = 0.9f;
        hot.seed = 7;
        for (auto* r : {&stop, &min, &zero, &logprobs, &penalty, &hot}) {
            reqs.push_back(std::move(*r));
        }
        return reqs;
    };
    auto expect_same = [](std::map<std::string, Collected>& got,
                          std::map<std::string, Collected>& want, const std::string& what) {
        ASSERT_EQ(got.size(), want.size()) << what;
        for (auto& [rid, w] : want) {
            const Collected& g = got[rid];
            EXPECT_EQ(g.tokens, w.tokens) << what << " " << rid;
            EXPECT_EQ(g.last.reason, w.last.reason) << what << " " << rid;
            EXPECT_EQ(g.last.matched_token, w.last.matched_token) << what << " " << rid;
            EXPECT_EQ(g.last.completion_tokens, w.last.completion_tokens) << what << " " << rid;
            EXPECT_EQ(g.outputs, w.outputs) << what << " " << rid;
            ASSERT_EQ(g.logprobs.size(), w.logprobs.size()) << what << " " << rid;
            for (std::size_t i = 0; i < w.logprobs.size(); ++i) {
                EXPECT_EQ(g.logprobs[i].logprob, w.logprobs[i].logprob) << what << " " << rid;
            }
        }
    };
    Engine serial(loaded_->model(), config(1024, 4, 7), 40, true, /*overlap=*/false);
    Engine overlapped(loaded_->model(), config(1024, 4, 7), 40, true, /*overlap=*/true);
    auto want = run_all(serial, requests());
    auto got = run_all(overlapped, requests());
    expect_same(got, want, "mixed");
    EXPECT_EQ(serial.stats().overlapped_steps, 0);
    EXPECT_GT(overlapped.stats().overlapped_steps, 10);
    EXPECT_EQ(got["stop"].last.matched_token, ref[2]);
    EXPECT_EQ(got["g4"].tokens, reference(prompt(45, 39), 16));
    for (Engine* e : {&serial, &overlapped}) {
        EXPECT_EQ(e->stats().num_running, 0);
        EXPECT_EQ(e->stats().used_tokens, e->stats().cached_tokens_in_tree);
    }

    Collected aborted, kept;
    auto x = greedy("x", prompt(3, 20), 1000);
    x.on_output = [&](const RequestOutput& out) {
        aborted.tokens.insert(aborted.tokens.end(), out.new_tokens.begin(), out.new_tokens.end());
        aborted.last = out;
    };
    auto y = greedy("y", prompt(4, 9), 12);
    y.on_output = [&](const RequestOutput& out) {
        kept.tokens.insert(kept.tokens.end(), out.new_tokens.begin(), out.new_tokens.end());
        kept.last = out;
    };
    overlapped.submit(std::move(x));
    overlapped.submit(std::move(y));
    overlapped.drain_inbox();
    for (int i = 0; i < 5; ++i) {
        overlapped.step();
    }
    overlapped.abort("x");
    overlapped.drain_inbox();
    EXPECT_TRUE(aborted.last.finished);
    EXPECT_EQ(aborted.last.reason, FinishReason::kAbort);
    EXPECT_EQ(aborted.tokens, reference(prompt(3, 20), static_cast<int>(aborted.tokens.size())));
    int guard = 0;
    while (overlapped.step() && ++guard < 1000) {
    }
    EXPECT_EQ(kept.tokens, reference(prompt(4, 9), 12));
    EXPECT_EQ(overlapped.stats().num_running, 0);
    EXPECT_EQ(overlapped.stats().used_tokens, overlapped.stats().cached_tokens_in_tree);
}

// CUDA graphs (--cuda-graph-max-bs 4): decode steps of up to 4 requests, padded to a recorded size
// (1, 2, 4) and replayed, give the tokens of the engine without them, with and without the
// overlap schedule, over contexts that cross the key bounds (64, 128) and the indexer's top-k
// (8); larger steps and prefills run as before. On the CPU nothing is recorded.
TEST_F(EngineTest, CudaGraphsGiveTheSameTokens) {
    auto requests = [&] {
        std::vector<GenerateRequest> reqs;
        for (int i = 0; i < 7; ++i) {
            reqs.push_back(greedy("g" + std::to_string(i), prompt(60 + i, 5 + 11 * i), 6 + 4 * i));
        }
        auto hot = greedy("hot", prompt(70, 9), 20);
        hot.sampling.temperature = 0.8f;
        hot.seed = 3;
        auto logprobs = greedy("logprobs", prompt(71, 30), 10);
        logprobs.return_logprob = true;
        reqs.push_back(std::move(hot));
        reqs.push_back(std::move(logprobs));
        return reqs;
    };
    Engine plain(loaded_->model(), config(1024, 4, 16), 40, true, /*overlap=*/false);
    auto want = run_all(plain, requests());
    EXPECT_EQ(plain.stats().graph_steps, 0);
    for (bool overlap : {false, true}) {
        Engine graphed(loaded_->model(), config(1024, 4, 16), 40, true, overlap,
                       /*graph_max_batch=*/4);
        auto got = run_all(graphed, requests());
        const std::string what = overlap ? "overlapped" : "serial";
        ASSERT_EQ(got.size(), want.size()) << what;
        for (auto& [rid, w] : want) {
            const Collected& g = got[rid];
            EXPECT_EQ(g.tokens, w.tokens) << what << " " << rid;
            ASSERT_EQ(g.logprobs.size(), w.logprobs.size()) << what << " " << rid;
            for (std::size_t i = 0; i < w.logprobs.size(); ++i) {
                EXPECT_NEAR(g.logprobs[i].logprob, w.logprobs[i].logprob, 1e-4)
                    << what << " " << rid;
            }
        }
        EXPECT_EQ(got["g6"].tokens, reference(prompt(66, 71), 30)) << what;
        const EngineStats st = graphed.stats();
        EXPECT_EQ(st.num_running, 0);
        EXPECT_EQ(st.used_tokens, st.cached_tokens_in_tree);
        if (std::string(DSSERVE_TEST_DEVICE) == "cuda") {
            EXPECT_GE(st.graph_steps, 10) << what;
        } else {
            EXPECT_EQ(st.graph_steps, 0) << what;
        }
    }
}

// The engine's own thread under the overlap schedule: an abort from another thread while a step
// is pending, then a stop while steps are in flight. Every request ends exactly once, the aborted
// one with its tokens so far equal to generate()'s, and nothing is left running.
TEST_F(EngineTest, OverlappedEngineThreadAbortsAndStopsMidStep) {
    Engine engine(loaded_->model(), config(1024, 1, 4096), 40, true, /*overlap=*/true);
    engine.start();
    std::mutex m;
    std::condition_variable cv;
    std::map<std::string, std::vector<std::int32_t>> out;
    std::map<std::string, int> finished;
    std::map<std::string, FinishReason> reason;
    for (int i = 0; i < 3; ++i) {
        const std::string rid = "t" + std::to_string(i);
        auto r = greedy(rid, prompt(60 + i, 7 + i), 100000);
        r.on_output = [&, rid](const RequestOutput& o) {
            std::lock_guard<std::mutex> lock(m);
            out[rid].insert(out[rid].end(), o.new_tokens.begin(), o.new_tokens.end());
            if (o.finished) {
                ++finished[rid];
                reason[rid] = o.reason;
            }
            cv.notify_all();
        };
        engine.submit(std::move(r));
    }
    {
        std::unique_lock<std::mutex> lock(m);
        ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60), [&] {
            return out["t0"].size() >= 5 && out["t1"].size() >= 5 && out["t2"].size() >= 5;
        }));
    }
    engine.abort("t1");
    {
        std::unique_lock<std::mutex> lock(m);
        ASSERT_TRUE(
            cv.wait_for(lock, std::chrono::seconds(60), [&] { return finished["t1"] > 0; }));
    }
    engine.stop();
    std::lock_guard<std::mutex> lock(m);
    for (int i = 0; i < 3; ++i) {
        const std::string rid = "t" + std::to_string(i);
        EXPECT_EQ(finished[rid], 1) << rid;
        EXPECT_EQ(reason[rid], FinishReason::kAbort) << rid;
        EXPECT_EQ(out[rid], reference(prompt(60 + i, 7 + i), static_cast<int>(out[rid].size())))
            << rid;
    }
    EXPECT_GT(engine.stats().overlapped_steps, 0);
    EXPECT_EQ(engine.stats().num_running, 0);
}

}  // namespace
}  // namespace dsserve::runtime
