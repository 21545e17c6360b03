// A generation request as the engine sees it: token ids in, token ids out. Text, JSON and chat
// templates stay at the HTTP edge.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/radix_cache.h"
#include "runtime/sampler.h"

namespace dsserve::runtime {

struct StopOptions {
    int max_new_tokens = 128;
    int min_new_tokens = 0;
    std::vector<std::int32_t> stop_token_ids;
    bool ignore_eos = false;
};

enum class FinishReason { kNone, kStopToken, kLength, kAbort };

struct TokenLogprob {
    std::int32_t token = 0;
    float logprob = 0.0f;
    std::vector<std::pair<std::int32_t, float>> top;  // the top_logprobs alternatives
};

// What the engine reports for a request after a step that produced tokens for it, and once when
// it finishes. Delivered on the engine thread: handlers must only hand it over, never block.
struct RequestOutput {
    std::vector<std::int32_t> new_tokens;
    std::vector<TokenLogprob> logprobs;
    bool finished = false;
    FinishReason reason = FinishReason::kNone;
    std::int32_t matched_token = -1;  // for kStopToken
    std::string abort_message;        // for kAbort
    int prompt_tokens = 0;
    int cached_tokens = 0;
    int completion_tokens = 0;
};

struct GenerateRequest {
    std::string rid;
    std::vector<std::int32_t> input_ids;
    SamplingParams sampling;
    StopOptions stop;
    std::optional<std::uint64_t> seed;
    bool return_logprob = false;
    int top_logprobs = 0;
    std::function<void(const RequestOutput&)> on_output;
};

enum class RequestState { kWaiting, kPrefilling, kDecoding, kFinished };

// Engine-side state of one request.
struct Request {
    GenerateRequest spec;
    RequestState state = RequestState::kWaiting;
    std::vector<std::int32_t> tokens;  // prompt then generated: the sequence so far
    int prompt_len = 0;
    int computed = 0;                 // tokens whose KV is in the cache
    int cached_tokens = 0;            // prompt tokens served from the prefix cache
    std::vector<std::int32_t> pages;  // page table: position p lives in pages[p / page_size]
    std::vector<std::int32_t> slots;  // slots[p]: the cache slot of position p, for the positions
                                      // planned so far; cleared with pages
    int shared_pages = 0;             // leading pages owned by the radix cache (pinned)
    RadixCache::Node* lock_node = nullptr;
    std::unique_ptr<Sampler> sampler;
    std::vector<std::int32_t> output_counts;  // per-token counts of generated tokens (penalties)
    bool abort_requested = false;
    std::string abort_message;
    int generated() const { return static_cast<int>(tokens.size()) - prompt_len; }
    // Generated tokens whose value is known: placeholders (negative ids, Scheduler::advance) are
    // only ever at the end, resolved in order.
    int resolved() const {
        auto end = tokens.end();
        while (end != tokens.begin() + prompt_len && *(end - 1) < 0) {
            --end;
        }
        return static_cast<int>(end - tokens.begin()) - prompt_len;
    }
};

}  // namespace dsserve::runtime
