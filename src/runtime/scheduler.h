// Continuous batching with chunked prefill over a paged KV pool and a radix prefix cache.
//
// Each step the scheduler plans one batch: every decoding request contributes its next token, and
// prefill chunks fill the remaining token budget (--chunked-prefill-size), oldest first. When the
// pool cannot hold the next decode tokens it first evicts unpinned prefix-cache pages, then
// retracts the newest running request: its computed KV goes to the prefix cache, it rejoins the
// front of the queue with its output so far, and it resumes later. A request never fails because
// the pool ran out.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "model/config.h"
#include "model/deepseek_v32.h"
#include "runtime/kv_pool.h"
#include "runtime/radix_cache.h"
#include "runtime/request.h"

namespace dsserve::runtime {

struct SchedulerConfig {
    std::int32_t page_size = 1;
    std::int32_t num_pages = 0;
    int max_running_requests = 256;
    int chunked_prefill_size = 2048;  // -1: a whole prompt per step
    std::int64_t context_length = 0;
    bool prefix_cache = true;
    std::int32_t eos_token_id = 1;
};

struct StepPlan {
    struct Entry {
        Request* req;
        std::int32_t num_new;
        bool sample;         // the step completes this request's input: sample its next token
        int out_index = -1;  // where advance() put the sampled token in req->tokens
    };
    std::vector<Entry> entries;
    int num_prefill_tokens = 0;
    int num_decode_tokens = 0;
    bool empty() const { return entries.empty(); }
};

class Scheduler {
public:
    explicit Scheduler(const SchedulerConfig& config);
    ~Scheduler();

    void add(std::unique_ptr<Request> req);
    void abort(const std::string& rid, const std::string& message);
    // Aborts every request (server shutdown).
    void abort_all(const std::string& message);

    StepPlan plan();
    // The model's input for a plan: every entry's new tokens, in plan order, and the cache slot of
    // every position each entry can see. The slot lists belong to the requests: the spans stay
    // valid until the next plan(), commit() or abort.
    model::ForwardBatch assemble(const StepPlan& plan);
    // Applies a step's sampled tokens (one per entry with sample = true, in order), publishes
    // outputs and retires finished requests: advance() then resolve().
    void commit(StepPlan& plan, const std::vector<std::int32_t>& sampled,
                const std::vector<TokenLogprob>& logprobs);

    // The two halves of commit, apart for an overlapped engine, which plans step N+1 before
    // step N's tokens are known. advance() books the step as computed and appends `next` (one
    // token per sampling entry, in order; placeholders the backend resolves, Ops::
    // pick_tokens_async) to each request's tokens, so the next plan feeds them. resolve() puts
    // the real tokens in their place, publishes them, checks the stop conditions and retires
    // what finished. A request finished here may still be in a plan advanced since
    // (`another_step_in_flight`): it stays allocated until the next resolve, which skips it;
    // its row in that step is discarded.
    void advance(StepPlan& plan, std::span<const std::int32_t> next);
    void resolve(const StepPlan& plan, std::span<const std::int32_t> sampled,
                 std::span<const TokenLogprob> logprobs, bool another_step_in_flight);
    // Whether the next plan's decode tokens fit the free pages without retracting anyone:
    // retraction hands a request's tokens to the prefix cache, which must not happen while a
    // placeholder is among them.
    bool decode_fits() const;
    // Called for finished requests to deliver the final output; exposed for aborts.
    bool flush_cache();

    bool idle() const { return waiting_.empty() && running_.empty(); }
    int num_running() const { return static_cast<int>(running_.size()); }
    int num_waiting() const { return static_cast<int>(waiting_.size()); }
    std::int64_t capacity_tokens() const {
        return static_cast<std::int64_t>(pool_.num_pages()) * pool_.page_size();
    }
    std::int64_t used_tokens() const {
        return static_cast<std::int64_t>(pool_.num_pages() - pool_.free_pages()) *
               pool_.page_size();
    }
    std::int64_t cached_tokens_in_tree() const {
        return static_cast<std::int64_t>(radix_.cached_pages()) * pool_.page_size();
    }
    std::int64_t num_retractions() const { return retractions_; }
    const SchedulerConfig& config() const { return config_; }

private:
    bool finishes_by_length(const Request& req) const;
    // Pages req lacks to hold `positions` positions.
    std::int32_t pages_short(const Request& req, std::int32_t positions) const;
    bool ensure_pages(Request& req, std::int32_t positions);
    bool admit(Request& req);
    void retract(Request& req);
    void finish(Request& req, FinishReason reason, std::int32_t matched,
                const std::string& message);
    void release(Request& req);
    void publish(Request& req, RequestOutput out);

    SchedulerConfig config_;
    KvPool pool_;
    RadixCache radix_;
    std::deque<std::unique_ptr<Request>> waiting_;
    std::vector<std::unique_ptr<Request>> running_;  // prefilling and decoding, in admission order
    // Finished in the last resolve() while another step was in flight, which still names them.
    std::vector<std::unique_ptr<Request>> retired_;
    std::int64_t retractions_ = 0;
};

}  // namespace dsserve::runtime
