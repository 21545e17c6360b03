#include "runtime/engine.h"

#include <chrono>
#include <cmath>

#include "core/log.h"

namespace dsserve::runtime {
namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}
}  // namespace

Engine::Engine(model::DeepseekV32& model, const SchedulerConfig& config)
    : model_(model),
      config_(config),
      cache_(model.make_cache(config.num_pages * config.page_size)),
      scheduler_(config) {
    stats_.capacity_tokens = scheduler_.capacity_tokens();
}

Engine::~Engine() {
    stop();
}

void Engine::start() {
    thread_ = std::thread([this] { loop(); });
}

void Engine::stop() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (stop_) {
            return;
        }
        stop_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) {
        thread_.join();
    }
    drain_inbox();
    scheduler_.abort_all("The server is shutting down.");
}

void Engine::submit(GenerateRequest request) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        inbox_.push_back(std::move(request));
    }
    wake_.notify_one();
}

void Engine::abort(const std::string& rid) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        aborts_.push_back(rid);
    }
    wake_.notify_one();
}

bool Engine::flush_cache() {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!thread_.joinable()) {
        lock.unlock();
        bool ok = scheduler_.flush_cache();
        std::lock_guard<std::mutex> relock(mutex_);
        refresh_stats_locked();
        return ok;
    }
    int ticket = ++flush_seq_;
    ++flush_requests_;
    wake_.notify_one();
    bool result = false;
    flushed_.wait(lock, [&] {
        for (auto& [t, ok] : flush_results_) {
            if (t == ticket) {
                result = ok;
                return true;
            }
        }
        return stop_;
    });
    std::erase_if(flush_results_, [&](const auto& r) { return r.first == ticket; });
    return result;
}

EngineStats Engine::stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
}

void Engine::drain_inbox() {
    std::vector<GenerateRequest> inbox;
    std::vector<std::string> aborts;
    int flushes = 0;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        inbox.swap(inbox_);
        aborts.swap(aborts_);
        flushes = flush_requests_;
        flush_requests_ = 0;
    }
    for (auto& spec : inbox) {
        auto req = std::make_unique<Request>();
        std::uint64_t seed = spec.seed ? *spec.seed : seed_counter_++ * 0x9e3779b97f4a7c15ull;
        req->sampler = std::make_unique<Sampler>(seed);
        req->spec = std::move(spec);
        scheduler_.add(std::move(req));
    }
    for (const auto& rid : aborts) {
        scheduler_.abort(rid, "Aborted by the client.");
    }
    bool ok = flushes > 0 && scheduler_.flush_cache();
    std::lock_guard<std::mutex> lock(mutex_);
    for (int i = 0; i < flushes; ++i) {
        flush_results_.emplace_back(flush_seq_ - flushes + 1 + i, ok);
    }
    if (flushes > 0) {
        flushed_.notify_all();
    }
    refresh_stats_locked();
}

bool Engine::step() {
    auto t0 = Clock::now();
    StepPlan plan = scheduler_.plan();
    if (plan.empty()) {
        return false;
    }
    model::ForwardBatch batch;
    std::vector<std::vector<std::int32_t>> slots(plan.entries.size());
    for (std::size_t i = 0; i < plan.entries.size(); ++i) {
        const auto& e = plan.entries[i];
        const Request& req = *e.req;
        batch.tokens.insert(batch.tokens.end(), req.tokens.begin() + req.computed,
                            req.tokens.begin() + req.computed + e.num_new);
        slots[i] = scheduler_.slots_of(req, req.computed + e.num_new);
        batch.seqs.push_back({req.computed, e.num_new, slots[i]});
    }
    double plan_seconds = seconds_since(t0);
    auto t1 = Clock::now();
    auto result = model_.forward(batch, cache_);
    double forward_seconds = seconds_since(t1);

    auto t2 = Clock::now();
    const auto vocab = static_cast<std::size_t>(model_.config().vocab_size);
    std::vector<std::int32_t> sampled;
    std::vector<TokenLogprob> logprobs;
    std::vector<float> row;
    for (std::size_t i = 0; i < plan.entries.size(); ++i) {
        const auto& e = plan.entries[i];
        if (!e.sample) {
            continue;
        }
        Request& req = *e.req;
        std::span<const float> raw(result.logits.row(static_cast<std::int64_t>(i)), vocab);
        row.assign(raw.begin(), raw.end());
        const auto& sp = req.spec.sampling;
        if (sp.needs_processing()) {
            apply_penalties(
                row, sp,
                std::span<const std::int32_t>(req.tokens.data(),
                                              static_cast<std::size_t>(req.prompt_len)),
                std::span<const std::int32_t>(req.tokens.data() + req.prompt_len,
                                              static_cast<std::size_t>(req.generated())));
        }
        if (req.generated() < req.spec.stop.min_new_tokens) {
            // Until min_new_tokens, nothing may end the request.
            if (!req.spec.stop.ignore_eos) {
                row[static_cast<std::size_t>(config_.eos_token_id)] = -INFINITY;
            }
            for (auto t : req.spec.stop.stop_token_ids) {
                if (t >= 0 && static_cast<std::size_t>(t) < vocab) {
                    row[static_cast<std::size_t>(t)] = -INFINITY;
                }
            }
        }
        std::int32_t token = req.sampler->sample(row, sp);
        sampled.push_back(token);
        TokenLogprob lp;
        if (req.spec.return_logprob) {
            auto l = logprobs_of(raw, token, req.spec.top_logprobs);
            lp.token = token;
            lp.logprob = l.logprob;
            lp.top = std::move(l.top);
        }
        logprobs.push_back(std::move(lp));
    }
    scheduler_.commit(plan, sampled, logprobs);
    double commit_seconds = seconds_since(t2);

    std::lock_guard<std::mutex> lock(mutex_);
    stats_.steps += 1;
    stats_.prefill_tokens += plan.num_prefill_tokens;
    stats_.decode_tokens += plan.num_decode_tokens;
    stats_.schedule_seconds += plan_seconds + commit_seconds;
    stats_.forward_seconds += forward_seconds;
    if (plan.num_decode_tokens > 0) {
        double total = plan_seconds + forward_seconds + commit_seconds;
        stats_.last_gen_throughput = total > 0 ? plan.num_decode_tokens / total : 0.0;
    }
    refresh_stats_locked();
    return true;
}

void Engine::refresh_stats_locked() {
    stats_.num_running = scheduler_.num_running();
    stats_.num_waiting = scheduler_.num_waiting();
    stats_.used_tokens = scheduler_.used_tokens();
    stats_.cached_tokens_in_tree = scheduler_.cached_tokens_in_tree();
    stats_.retractions = scheduler_.num_retractions();
}

void Engine::loop() {
    for (;;) {
        drain_inbox();
        {
            std::unique_lock<std::mutex> lock(mutex_);
            if (stop_) {
                return;
            }
            if (scheduler_.idle() && inbox_.empty() && aborts_.empty() && flush_requests_ == 0) {
                wake_.wait(lock, [this] {
                    return stop_ || !inbox_.empty() || !aborts_.empty() || flush_requests_ > 0;
                });
                continue;
            }
        }
        try {
            step();
        } catch (const std::exception& e) {
            // A step failing is a bug, not bad input; abort what is in flight rather than die.
            log::error("engine step failed: ", e.what());
            scheduler_.abort_all(std::string("Internal error: ") + e.what());
        }
    }
}

}  // namespace dsserve::runtime
