#include "runtime/scheduler.h"

#include <algorithm>
#include <climits>

#include "core/error.h"
#include "core/log.h"

namespace dsserve::runtime {

Scheduler::Scheduler(const SchedulerConfig& config)
    : config_(config), pool_(config.num_pages, config.page_size), radix_(pool_) {}

Scheduler::~Scheduler() = default;

void Scheduler::add(std::unique_ptr<Request> req) {
    req->state = RequestState::kWaiting;
    req->prompt_len = static_cast<int>(req->spec.input_ids.size());
    req->tokens = req->spec.input_ids;
    if (req->tokens.empty()) {
        finish(*req, FinishReason::kAbort, -1, "The input is empty.");
        return;
    }
    const std::int64_t need = static_cast<std::int64_t>(req->tokens.size()) + 1;
    if (need > capacity_tokens()) {
        finish(*req, FinishReason::kAbort, -1,
               "The input (" + std::to_string(req->tokens.size()) +
                   " tokens) does not fit the KV cache (" + std::to_string(capacity_tokens()) +
                   " tokens).");
        return;
    }
    log::debug("scheduler: queued ", req->spec.rid, " (", req->tokens.size(), " tokens)");
    waiting_.push_back(std::move(req));
}

void Scheduler::abort(const std::string& rid, const std::string& message) {
    for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
        if ((*it)->spec.rid == rid) {
            finish(**it, FinishReason::kAbort, -1, message);
            waiting_.erase(it);
            return;
        }
    }
    for (auto it = running_.begin(); it != running_.end(); ++it) {
        if ((*it)->spec.rid == rid) {
            finish(**it, FinishReason::kAbort, -1, message);
            running_.erase(it);
            return;
        }
    }
}

void Scheduler::abort_all(const std::string& message) {
    for (auto& r : waiting_) {
        finish(*r, FinishReason::kAbort, -1, message);
    }
    for (auto& r : running_) {
        finish(*r, FinishReason::kAbort, -1, message);
    }
    waiting_.clear();
    running_.clear();
    retired_.clear();
}

model::ForwardBatch Scheduler::assemble(const StepPlan& plan) {
    model::ForwardBatch batch;
    const std::int32_t ps = pool_.page_size();
    for (const auto& e : plan.entries) {
        Request& req = *e.req;
        const std::int32_t positions = req.computed + e.num_new;
        batch.tokens.insert(batch.tokens.end(), req.tokens.begin() + req.computed,
                            req.tokens.begin() + positions);
        // Pages only ever grow at the end until release() clears both lists, so the slots
        // already listed stay right: add the new positions only, and a decode step costs one
        // slot per request instead of its whole context.
        DS_ASSERT(static_cast<std::int32_t>(req.slots.size()) <= positions, req.spec.rid, " lists ",
                  req.slots.size(), " slots for ", positions, " positions");
        for (auto p = static_cast<std::int32_t>(req.slots.size()); p < positions; ++p) {
            req.slots.push_back(pool_.slot(req.pages[static_cast<std::size_t>(p / ps)], p % ps));
        }
        batch.seqs.push_back(
            {req.computed, e.num_new,
             std::span<const std::int32_t>(req.slots.data(), static_cast<std::size_t>(positions))});
    }
    return batch;
}

std::int32_t Scheduler::pages_short(const Request& req, std::int32_t positions) const {
    const std::int32_t ps = pool_.page_size();
    return std::max<std::int32_t>(
        0, (positions + ps - 1) / ps - static_cast<std::int32_t>(req.pages.size()));
}

bool Scheduler::ensure_pages(Request& req, std::int32_t positions) {
    const std::int32_t need = pages_short(req, positions);
    if (need == 0) {
        return true;
    }
    if (pool_.free_pages() < need) {
        radix_.evict(need - pool_.free_pages());
    }
    auto pages = pool_.allocate(need);
    if (!pages) {
        return false;
    }
    req.pages.insert(req.pages.end(), pages->begin(), pages->end());
    return true;
}

bool Scheduler::admit(Request& req) {
    DS_ASSERT(req.pages.empty() && req.slots.empty() && req.lock_node == nullptr, req.spec.rid);
    req.computed = 0;
    req.shared_pages = 0;
    if (config_.prefix_cache) {
        // At least one token must be computed to produce logits, so match all but the last.
        std::span<const std::int32_t> key(req.tokens.data(), req.tokens.size() - 1);
        auto m = radix_.match(key);
        radix_.lock(m.node);
        req.lock_node = m.node;
        req.pages = m.pages;
        req.shared_pages = static_cast<int>(m.pages.size());
        req.computed = req.shared_pages * pool_.page_size();
        req.cached_tokens = std::max(req.cached_tokens, std::min(req.computed, req.prompt_len));
    }
    req.state = RequestState::kPrefilling;
    return true;
}

void Scheduler::release(Request& req) {
    const std::int32_t ps = pool_.page_size();
    std::size_t keep = 0;
    if (config_.prefix_cache) {
        // Hand every full page of computed KV to the tree; it frees the copies it already has.
        keep = std::min(req.pages.size(), static_cast<std::size_t>(req.computed / ps));
        if (keep > 0) {
            std::vector<std::int32_t> pages(req.pages.begin(),
                                            req.pages.begin() + static_cast<std::ptrdiff_t>(keep));
            radix_.insert(std::span<const std::int32_t>(req.tokens.data(),
                                                        keep * static_cast<std::size_t>(ps)),
                          pages);
        }
    }
    for (std::size_t i = std::max<std::size_t>(keep, static_cast<std::size_t>(req.shared_pages));
         i < req.pages.size(); ++i) {
        pool_.release(req.pages[i]);
    }
    if (req.lock_node != nullptr) {
        radix_.unlock(req.lock_node);
    }
    req.lock_node = nullptr;
    req.pages.clear();
    req.slots.clear();
    req.shared_pages = 0;
    req.computed = 0;
}

void Scheduler::retract(Request& req) {
    release(req);
    req.state = RequestState::kWaiting;
    ++retractions_;
}

void Scheduler::publish(Request& req, RequestOutput out) {
    out.prompt_tokens = req.prompt_len;
    out.cached_tokens = req.cached_tokens;
    out.completion_tokens = req.resolved();
    if (req.spec.on_output) {
        req.spec.on_output(out);
    }
}

void Scheduler::finish(Request& req, FinishReason reason, std::int32_t matched,
                       const std::string& message) {
    if (req.state != RequestState::kWaiting || !req.pages.empty()) {
        release(req);
    }
    req.state = RequestState::kFinished;
    RequestOutput out;
    out.finished = true;
    out.reason = reason;
    out.matched_token = matched;
    out.abort_message = message;
    publish(req, std::move(out));
}

StepPlan Scheduler::plan() {
    StepPlan plan;
    // Decode: every request past its prompt feeds its last token. Oldest first; when the pool is
    // full the newest are retracted until the rest fit.
    for (std::size_t i = 0; i < running_.size(); ++i) {
        Request& req = *running_[i];
        if (req.state != RequestState::kDecoding || finishes_by_length(req)) {
            continue;
        }
        const auto positions = static_cast<std::int32_t>(req.tokens.size());
        while (!ensure_pages(req, positions)) {
            std::size_t victim = running_.size() - 1;
            Request& v = *running_[victim];
            retract(v);
            waiting_.push_front(std::move(running_[victim]));
            running_.pop_back();
            if (victim == i) {
                break;
            }
        }
        if (i >= running_.size()) {
            break;
        }
        plan.entries.push_back({&req, 1, true});
        plan.num_decode_tokens += 1;
    }
    // Prefill: continue chunked prompts, then admit new requests, within the token budget.
    int budget = config_.chunked_prefill_size < 0 ? INT_MAX : config_.chunked_prefill_size;
    auto schedule_chunk = [&](Request& req) -> bool {
        const int remaining = static_cast<int>(req.tokens.size()) - req.computed;
        const int chunk = std::min(remaining, budget);
        if (chunk <= 0 || !ensure_pages(req, req.computed + chunk)) {
            return false;
        }
        const bool completes = req.computed + chunk == static_cast<int>(req.tokens.size());
        plan.entries.push_back({&req, chunk, completes && req.spec.stop.max_new_tokens > 0});
        plan.num_prefill_tokens += chunk;
        budget -= chunk;
        return true;
    };
    for (auto& r : running_) {
        if (r->state == RequestState::kPrefilling && budget > 0) {
            schedule_chunk(*r);
        }
    }
    while (budget > 0 && !waiting_.empty() &&
           static_cast<int>(running_.size()) < config_.max_running_requests) {
        Request& req = *waiting_.front();
        admit(req);
        if (!schedule_chunk(req)) {
            release(req);  // back to waiting untouched; try again when pages free up
            req.state = RequestState::kWaiting;
            break;
        }
        running_.push_back(std::move(waiting_.front()));
        waiting_.pop_front();
    }
    return plan;
}

void Scheduler::commit(StepPlan& plan, const std::vector<std::int32_t>& sampled,
                       const std::vector<TokenLogprob>& logprobs) {
    advance(plan, sampled);
    resolve(plan, sampled, logprobs, false);
}

// Known before the tokens are: the request ends by length once the tokens in flight land.
bool Scheduler::finishes_by_length(const Request& req) const {
    // generated() counts the unresolved tokens too: each will be one unless its request stops
    // first.
    return req.generated() >= req.spec.stop.max_new_tokens ||
           static_cast<std::int64_t>(req.tokens.size()) >= config_.context_length;
}

bool Scheduler::decode_fits() const {
    std::int64_t need = 0;
    for (const auto& r : running_) {
        if (r->state == RequestState::kDecoding && !finishes_by_length(*r)) {
            need += pages_short(*r, static_cast<std::int32_t>(r->tokens.size()));
        }
    }
    return need <= pool_.free_pages();
}

void Scheduler::advance(StepPlan& plan, std::span<const std::int32_t> next) {
    std::size_t k = 0;
    for (auto& e : plan.entries) {
        Request& req = *e.req;
        if (req.state == RequestState::kFinished) {
            k += e.sample ? 1 : 0;
            continue;
        }
        req.computed += e.num_new;
        if (e.sample) {
            e.out_index = static_cast<int>(req.tokens.size());
            req.tokens.push_back(next[k++]);
            req.state = RequestState::kDecoding;
        }
    }
}

void Scheduler::resolve(const StepPlan& plan, std::span<const std::int32_t> sampled,
                        std::span<const TokenLogprob> logprobs, bool another_step_in_flight) {
    std::size_t k = 0;
    for (const auto& e : plan.entries) {
        Request& req = *e.req;
        if (req.state == RequestState::kFinished) {
            k += e.sample ? 1 : 0;
            continue;
        }
        if (!e.sample) {
            if (req.computed == static_cast<int>(req.tokens.size()) &&
                req.spec.stop.max_new_tokens == 0) {
                finish(req, FinishReason::kLength, -1, "");
            }
            continue;
        }
        const std::int32_t token = sampled[k];
        RequestOutput out;
        out.new_tokens.push_back(token);
        if (req.spec.return_logprob && k < logprobs.size()) {
            out.logprobs.push_back(logprobs[k]);
        }
        ++k;
        const auto at = static_cast<std::size_t>(e.out_index);
        DS_ASSERT(at < req.tokens.size(), req.spec.rid, " has no token ", at);
        req.tokens[at] = token;
        const int generated = static_cast<int>(at) + 1 - req.prompt_len;
        const auto& stop = req.spec.stop;
        const bool may_stop = generated >= stop.min_new_tokens;
        FinishReason reason = FinishReason::kNone;
        if (may_stop && !stop.ignore_eos && token == config_.eos_token_id) {
            reason = FinishReason::kStopToken;
        } else if (may_stop && std::find(stop.stop_token_ids.begin(), stop.stop_token_ids.end(),
                                         token) != stop.stop_token_ids.end()) {
            reason = FinishReason::kStopToken;
        } else if (generated >= stop.max_new_tokens ||
                   static_cast<std::int64_t>(at) + 1 >= config_.context_length) {
            reason = FinishReason::kLength;
        }
        if (reason != FinishReason::kNone) {
            // Placeholders after this token belong to steps whose rows are now discarded; the
            // KV of this token itself may be in flight, which stream order makes safe to share.
            req.tokens.resize(at + 1);
            req.computed = std::min(req.computed, static_cast<int>(at) + 1);
        }
        publish(req, std::move(out));
        if (reason != FinishReason::kNone) {
            finish(req, reason, reason == FinishReason::kStopToken ? token : -1, "");
        }
    }
    std::vector<std::unique_ptr<Request>> done;
    for (auto& r : running_) {
        if (r->state == RequestState::kFinished) {
            done.push_back(std::move(r));
        }
    }
    std::erase(running_, nullptr);
    // The requests retired before were named only by the plan just resolved.
    retired_.clear();
    if (another_step_in_flight) {
        retired_ = std::move(done);
    }
}

bool Scheduler::flush_cache() {
    if (!idle()) {
        return false;
    }
    radix_.clear();
    return true;
}

}  // namespace dsserve::runtime
