// The scheduler without a model: every batch it assembles names, for each position an entry can
// see, the slot its page table gives, through chunked prefill, prefix reuse and retraction.
#include "runtime/scheduler.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace dsserve::runtime {
namespace {

struct Outcome {
    int steps = 0;
    int finished = 0;
    std::int64_t retractions = 0;
    int cached_tokens = 0;
};

// Runs requests sharing prompt prefixes to completion on a pool too small to hold them all,
// checking every assembled batch against the page tables.
Outcome run_checked(std::int32_t page_size, std::int32_t num_pages, int chunk) {
    SchedulerConfig c;
    c.page_size = page_size;
    c.num_pages = num_pages;
    c.max_running_requests = 16;
    c.chunked_prefill_size = chunk;
    c.context_length = 1 << 20;
    Scheduler scheduler(c);
    std::mt19937 rng(3);
    std::uniform_int_distribution<std::int32_t> token(2, 1000);
    std::vector<std::int32_t> prefix(40);
    for (auto& t : prefix) {
        t = token(rng);
    }
    Outcome run;
    auto add = [&](int i) {
        auto req = std::make_unique<Request>();
        req->spec.rid = "r" + std::to_string(i);
        req->spec.input_ids.assign(prefix.begin(), prefix.begin() + 10 + (i * 7) % 30);
        for (int k = 0; k < 5 + i % 9; ++k) {
            req->spec.input_ids.push_back(token(rng));
        }
        req->spec.stop.max_new_tokens = 10 + (i * 5) % 25;
        req->spec.stop.ignore_eos = true;
        req->spec.on_output = [&run](const RequestOutput& out) {
            if (out.finished) {
                EXPECT_EQ(out.reason, FinishReason::kLength);
                run.finished++;
                run.cached_tokens += out.cached_tokens;
            }
        };
        scheduler.add(std::move(req));
    };
    for (int i = 0; i < 12; ++i) {
        add(i);
    }
    int added = 12;
    while (!scheduler.idle()) {
        StepPlan plan = scheduler.plan();
        EXPECT_FALSE(plan.empty());
        if (plan.empty()) {
            break;
        }
        const model::ForwardBatch batch = scheduler.assemble(plan);
        EXPECT_EQ(batch.seqs.size(), plan.entries.size());
        std::size_t new_tokens = 0;
        std::set<std::int32_t> written;
        for (std::size_t i = 0; i < plan.entries.size(); ++i) {
            const Request& req = *plan.entries[i].req;
            const auto& seq = batch.seqs[i];
            EXPECT_EQ(seq.num_cached, req.computed);
            EXPECT_EQ(seq.num_new, plan.entries[i].num_new);
            EXPECT_EQ(static_cast<std::int32_t>(seq.slots.size()), req.computed + seq.num_new);
            for (std::size_t p = 0; p < seq.slots.size(); ++p) {
                const auto page = req.pages[p / static_cast<std::size_t>(page_size)];
                const auto expected =
                    page * page_size +
                    static_cast<std::int32_t>(p % static_cast<std::size_t>(page_size));
                if (seq.slots[p] != expected) {
                    ADD_FAILURE() << req.spec.rid << " position " << p << ": slot " << seq.slots[p]
                                  << ", page table says " << expected;
                    return run;
                }
            }
            // The slots a step writes belong to one sequence each.
            for (std::size_t p = static_cast<std::size_t>(req.computed); p < seq.slots.size();
                 ++p) {
                EXPECT_TRUE(written.insert(seq.slots[p]).second) << req.spec.rid;
            }
            new_tokens += static_cast<std::size_t>(seq.num_new);
        }
        EXPECT_EQ(batch.tokens.size(), new_tokens);
        std::vector<std::int32_t> sampled;
        for (const auto& e : plan.entries) {
            if (e.sample) {
                sampled.push_back(token(rng));
            }
        }
        scheduler.commit(plan, sampled, {});
        // Late arrivals find the prefix of finished requests in the tree.
        if (++run.steps % 10 == 0 && added < 20) {
            add(added++);
        }
    }
    run.retractions = scheduler.num_retractions();
    return run;
}

TEST(SchedulerTest, AssembledSlotsFollowThePageTables) {
    struct Case {
        std::int32_t page_size, num_pages;
        int chunk;
    };
    for (Case k : {Case{1, 160, 16}, Case{4, 40, 9}, Case{16, 10, 64}, Case{1, 4096, -1}}) {
        const Outcome run = run_checked(k.page_size, k.num_pages, k.chunk);
        EXPECT_EQ(run.finished, 20) << k.page_size;
        if (k.num_pages * k.page_size < 1000) {
            EXPECT_GT(run.retractions, 0) << "pool of " << k.num_pages << " pages";
        }
        EXPECT_GT(run.cached_tokens, 0) << k.page_size;
    }
}

// The overlapped engine's order: step N+1 is planned and advanced with placeholder tokens before
// step N's tokens are resolved. A request that stops at N is seen one step late; its row in N+1
// is discarded, it publishes nothing more, and it stays allocated until N+1 is resolved. One
// that will end by length is not planned past its last token.
TEST(SchedulerTest, PlaceholdersResolveOneStepLate) {
    SchedulerConfig c;
    c.page_size = 4;
    c.num_pages = 64;
    c.context_length = 1 << 20;
    c.eos_token_id = 1;
    Scheduler scheduler(c);
    struct Seen {
        std::vector<std::int32_t> tokens;
        std::vector<int> completion;
        RequestOutput last;
    };
    std::map<std::string, Seen> seen;
    for (std::string rid : {"stops", "runs"}) {
        auto req = std::make_unique<Request>();
        req->spec.rid = rid;
        req->spec.input_ids = {5, 6, 7, 8, 9};
        req->spec.stop.max_new_tokens = rid == "runs" ? 3 : 100;
        req->spec.stop.stop_token_ids = {42};
        req->spec.on_output = [&seen, rid](const RequestOutput& out) {
            Seen& s = seen[rid];
            s.tokens.insert(s.tokens.end(), out.new_tokens.begin(), out.new_tokens.end());
            s.completion.push_back(out.completion_tokens);
            s.last = out;
        };
        scheduler.add(std::move(req));
    }
    StepPlan p1 = scheduler.plan();
    ASSERT_EQ(p1.entries.size(), 2u);
    scheduler.advance(p1, std::vector<std::int32_t>{-1, -2});
    StepPlan p2 = scheduler.plan();
    ASSERT_EQ(p2.entries.size(), 2u);
    // The placeholders are what step 2 feeds, at the positions after the prompts.
    const model::ForwardBatch b2 = scheduler.assemble(p2);
    EXPECT_EQ(b2.tokens, (std::vector<std::int32_t>{-1, -2}));
    EXPECT_EQ(b2.seqs[0].num_cached, 5);
    scheduler.advance(p2, std::vector<std::int32_t>{-3, -4});
    scheduler.resolve(p1, std::vector<std::int32_t>{42, 10}, {}, true);
    EXPECT_TRUE(seen["stops"].last.finished);
    EXPECT_EQ(seen["stops"].last.reason, FinishReason::kStopToken);
    EXPECT_EQ(seen["stops"].tokens, (std::vector<std::int32_t>{42}));
    EXPECT_EQ(seen["stops"].last.completion_tokens, 1);
    EXPECT_EQ(seen["runs"].completion, (std::vector<int>{1}));  // the placeholder not counted
    EXPECT_EQ(scheduler.num_running(), 1);
    StepPlan p3 = scheduler.plan();
    ASSERT_EQ(p3.entries.size(), 1u);
    EXPECT_EQ(scheduler.assemble(p3).tokens, (std::vector<std::int32_t>{-4}));
    scheduler.advance(p3, std::vector<std::int32_t>{-5});
    // Step 2's row of the stopped request is discarded; the retired request is still readable.
    scheduler.resolve(p2, std::vector<std::int32_t>{77, 11}, {}, true);
    EXPECT_EQ(seen["stops"].tokens, (std::vector<std::int32_t>{42}));
    EXPECT_EQ(seen["runs"].tokens, (std::vector<std::int32_t>{10, 11}));
    // Three tokens are on their way: the length limit is known, so nothing more is planned.
    EXPECT_TRUE(scheduler.plan().empty());
    scheduler.resolve(p3, std::vector<std::int32_t>{12}, {}, false);
    EXPECT_EQ(seen["runs"].tokens, (std::vector<std::int32_t>{10, 11, 12}));
    EXPECT_EQ(seen["runs"].last.reason, FinishReason::kLength);
    EXPECT_EQ(seen["runs"].last.completion_tokens, 3);
    EXPECT_TRUE(scheduler.idle());
    // The prefix cache holds real tokens only: a prompt of "stops"' prompt and token hits it.
    auto again = std::make_unique<Request>();
    again->spec.rid = "again";
    again->spec.input_ids = {5, 6, 7, 8, 9, 42, 3, 3, 3};
    again->spec.stop.max_new_tokens = 1;
    scheduler.add(std::move(again));
    StepPlan p4 = scheduler.plan();
    ASSERT_EQ(p4.entries.size(), 1u);
    EXPECT_EQ(p4.entries[0].req->cached_tokens, 4);  // one page; the second is not full
    for (std::int32_t t : scheduler.assemble(p4).tokens) {
        EXPECT_GE(t, 0);
    }
}

}  // namespace
}  // namespace dsserve::runtime
