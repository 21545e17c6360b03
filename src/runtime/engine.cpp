#include "runtime/engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>

#include "core/log.h"

namespace dsserve::runtime {
namespace {
using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}
}  // namespace

Engine::Engine(model::DeepseekV32& model, const SchedulerConfig& config, int decode_log_interval,
               bool device_sampling, bool overlap, int graph_max_batch)
    : model_(model),
      config_(config),
      device_sampling_(device_sampling),
      overlap_(overlap && device_sampling),
      cache_(model.make_cache(config.num_pages * config.page_size + (graph_max_batch > 0 ? 1 : 0))),
      scheduler_(config),
      decode_log_interval_(std::max(1, decode_log_interval)) {
    stats_.capacity_tokens = scheduler_.capacity_tokens();
    if (graph_max_batch > 0) {
        graphs_.emplace(model_, graph_max_batch, config.num_pages * config.page_size);
    }
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
    pending_.reset();  // its requests are aborted next; the device finishes its work regardless
    scheduler_.abort_all("The server is shutting down.");
    std::lock_guard<std::mutex> lock(mutex_);
    refresh_stats_locked();
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
    if (pending_ && (!aborts.empty() || flushes > 0)) {
        // Aborting a request or clearing the cache must not pull pages from under a step whose
        // tokens have not landed.
        double wait = 0.0, commit = 0.0;
        settle(false, wait, commit);
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
    StepTimes times;
    auto settle_now = [&](bool another_step_in_flight) {
        settle(another_step_in_flight, times.forward, times.commit);
    };
    if (pending_ && !scheduler_.decode_fits()) {
        settle_now(false);  // the plan may retract, and retraction needs every token real
    }
    const auto t0 = Clock::now();
    StepPlan plan = scheduler_.plan();
    if (plan.empty()) {
        if (!pending_) {
            return false;
        }
        settle_now(false);
        std::lock_guard<std::mutex> lock(mutex_);
        refresh_stats_locked();
        return true;
    }
    model::ForwardBatch batch = scheduler_.assemble(plan);
    batch.logits_on_device = device_sampling_;
    const bool ahead = pending_.has_value();
    const auto t1 = Clock::now();
    std::optional<model::ForwardResult> graphed;
    if (graphs_) {
        const long replayed = graphs_->counts().replayed;
        graphed = graphs_->forward(batch, cache_);
        last_step_graphed_ = graphs_->counts().replayed > replayed;
    }
    const model::ForwardResult result =
        graphed ? std::move(*graphed) : model_.forward(batch, cache_);
    const auto t1_enqueued = Clock::now();
    const Choice choice = choose(plan);
    std::optional<Pending> deferred = defer(plan, choice, result);
    const auto t2 = Clock::now();
    // The step before is settled only now, so that the device has this one to run while the
    // host waits for those tokens and commits them.
    if (pending_) {
        settle_now(true);
    }
    const auto t2_settled = Clock::now();
    times.plan = seconds(t0, t1);
    times.enqueue = seconds(t1, t1_enqueued);
    times.forward += times.enqueue;
    times.sample = seconds(t1_enqueued, t2);
    if (deferred) {
        pending_ = std::move(deferred);
        record(pending_->plan, times, ahead);
        return true;
    }
    if (device_sampling_) {
        // Nothing has waited for the device yet: the forward's time is its device time, as when
        // the logits come back to the host, and sampling's only its own.
        model_.ops().synchronize();
    }
    const auto t3 = Clock::now();
    Sampled sampled = sample(plan, choice, result);
    const auto t4 = Clock::now();
    scheduler_.commit(plan, sampled.tokens, sampled.logprobs);
    const auto t5 = Clock::now();
    times.forward += seconds(t2_settled, t3);
    times.sample += seconds(t3, t4);
    times.commit += seconds(t4, t5);
    record(plan, times, ahead);
    return true;
}

std::optional<Engine::Pending> Engine::defer(StepPlan& plan, const Choice& choice,
                                             const model::ForwardResult& result) {
    constexpr std::int32_t kBank = model::Ops::kTokenSlots / 2;
    if (!overlap_ || !choice.host_rows.empty() ||
        choice.sampled.size() > static_cast<std::size_t>(kBank)) {
        return std::nullopt;
    }
    const std::int32_t first = next_bank_ * kBank;
    if (!model_.ops().pick_tokens_async(result.logits, choice.greedy_rows, choice.draws, first)) {
        return std::nullopt;
    }
    next_bank_ ^= 1;
    Pending p;
    p.first_slot = first;
    std::vector<std::int32_t> placeholders;
    auto next_greedy = first;
    auto next_draw = first + static_cast<std::int32_t>(choice.greedy_rows.size());
    for (Pick how : choice.picks) {
        const std::int32_t slot = how == Pick::device_argmax ? next_greedy++ : next_draw++;
        p.slot_of.push_back(slot);
        placeholders.push_back(-1 - slot);
    }
    scheduler_.advance(plan, placeholders);
    p.plan = std::move(plan);
    return p;
}

void Engine::settle(bool another_step_in_flight, double& wait, double& commit) {
    Pending p = std::move(*pending_);
    pending_.reset();
    const auto t0 = Clock::now();
    std::vector<std::int32_t> tokens;
    if (!p.slot_of.empty()) {
        const std::vector<std::int32_t> slots =
            model_.ops().collect_tokens(p.first_slot, static_cast<std::int32_t>(p.slot_of.size()));
        for (std::int32_t slot : p.slot_of) {
            tokens.push_back(slots[static_cast<std::size_t>(slot - p.first_slot)]);
        }
    }
    const auto t1 = Clock::now();
    scheduler_.resolve(p.plan, tokens, {}, another_step_in_flight);
    const auto t2 = Clock::now();
    wait += seconds(t0, t1);
    commit += seconds(t1, t2);
}

void Engine::record(const StepPlan& plan, const StepTimes& times, bool ahead) {
    std::string log_line;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stats_.overlapped_steps += ahead ? 1 : 0;
        log_line = record_locked(plan, times);
        refresh_stats_locked();
    }
    // Written after the lock: stderr may block, and HTTP threads read stats under it.
    if (!log_line.empty()) {
        log::info(log_line);
    }
}

namespace {

// Rows whose token depends on the model's logits and the sampling params alone: nothing to add
// to or ban from the logits first, and no logprobs to report. The device picks these, greedy
// ones by argmax and the rest by a draw.
bool plain(const Request& req) {
    return !req.spec.sampling.needs_processing() && !req.spec.return_logprob &&
           req.generated() >= req.spec.stop.min_new_tokens;
}

}  // namespace

std::int32_t Engine::sample_on_host(Request& req, std::span<const float> raw,
                                    std::vector<float>& row, TokenLogprob& logprob) {
    const auto vocab = raw.size();
    row.assign(raw.begin(), raw.end());
    const auto& sp = req.spec.sampling;
    if (sp.needs_processing()) {
        apply_penalties(row, sp,
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
    if (req.spec.return_logprob) {
        auto l = logprobs_of(raw, token, req.spec.top_logprobs);
        logprob.token = token;
        logprob.logprob = l.logprob;
        logprob.top = std::move(l.top);
    }
    return token;
}

// With device sampling, greedy rows come back as ids from one argmax launch, rows drawn at
// temperature > 0 from one sampling launch, and the other rows as a copy of just those rows;
// tokens land in plan order either way. A drawn row takes its uniform from the request's own
// generator here, so a seed gives the same tokens on the device and on the host; a backend
// without a sampling kernel gets the rows copied and picked on the host with that same uniform.
Engine::Choice Engine::choose(const StepPlan& plan) {
    Choice c;
    for (std::size_t i = 0; i < plan.entries.size(); ++i) {
        const auto& e = plan.entries[i];
        if (!e.sample) {
            continue;
        }
        // Entry i owns logits row i: every entry brings new tokens, and each gets one row.
        const auto row = static_cast<std::int64_t>(i);
        const SamplingParams& sp = e.req->spec.sampling;
        Pick how = Pick::host;
        if (device_sampling_ && plain(*e.req)) {
            how = is_greedy(sp) ? Pick::device_argmax : Pick::device_draw;
        }
        switch (how) {
            case Pick::device_argmax:
                c.greedy_rows.push_back(row);
                break;
            case Pick::device_draw:
                c.draws.push_back({row, sp.temperature, sp.top_k, sp.top_p, sp.min_p,
                                   e.req->sampler->next_canonical()});
                break;
            case Pick::host:
                c.host_rows.push_back(row);
                break;
        }
        c.sampled.push_back(i);
        c.picks.push_back(how);
    }
    return c;
}

Engine::Sampled Engine::sample(const StepPlan& plan, const Choice& choice,
                               const model::ForwardResult& result) {
    const auto vocab = static_cast<std::size_t>(model_.config().vocab_size);
    const auto& [sampled, picks, greedy_rows, host_rows, draws] = choice;
    Sampled out;
    model::Ops& ops = model_.ops();
    std::vector<std::int32_t> greedy_tokens;
    if (!greedy_rows.empty()) {
        greedy_tokens = ops.argmax_rows(result.logits, greedy_rows);
    }
    std::optional<std::vector<std::int32_t>> drawn_tokens;
    model::Tensor drawn_copy;
    if (!draws.empty()) {
        drawn_tokens = ops.sample_rows(result.logits, draws);
        if (!drawn_tokens) {
            std::vector<std::int64_t> rows;
            for (const auto& d : draws) {
                rows.push_back(d.row);
            }
            drawn_copy = ops.rows_to_host(result.logits, rows);
        }
    }
    // Without device sampling the logits are already on the host, every row of them.
    model::Tensor copied;
    if (device_sampling_ && !host_rows.empty()) {
        copied = ops.rows_to_host(result.logits, host_rows);
    }
    const model::Tensor& host = device_sampling_ ? copied : result.logits;
    std::vector<float> row;
    std::size_t next_greedy = 0, next_draw = 0, next_host = 0;
    for (std::size_t k = 0; k < sampled.size(); ++k) {
        Request& req = *plan.entries[sampled[k]].req;
        TokenLogprob lp;
        switch (picks[k]) {
            case Pick::device_argmax:
                out.tokens.push_back(greedy_tokens[next_greedy++]);
                break;
            case Pick::device_draw: {
                const std::size_t d = next_draw++;
                if (drawn_tokens) {
                    out.tokens.push_back((*drawn_tokens)[d]);
                } else {
                    const float* copy = drawn_copy.row(static_cast<std::int64_t>(d));
                    out.tokens.push_back(
                        pick({copy, vocab}, req.spec.sampling, draws[d].canonical));
                }
                break;
            }
            case Pick::host: {
                const std::int64_t r =
                    device_sampling_ ? static_cast<std::int64_t>(next_host) : host_rows[next_host];
                ++next_host;
                out.tokens.push_back(sample_on_host(req, {host.row(r), vocab}, row, lp));
                break;
            }
        }
        out.logprobs.push_back(std::move(lp));
    }
    return out;
}

std::string Engine::record_locked(const StepPlan& plan, const StepTimes& t) {
    stats_.steps += 1;
    stats_.graph_steps += last_step_graphed_ ? 1 : 0;
    stats_.prefill_tokens += plan.num_prefill_tokens;
    stats_.decode_tokens += plan.num_decode_tokens;
    stats_.plan_seconds += t.plan;
    stats_.commit_seconds += t.commit;
    stats_.schedule_seconds += t.plan + t.commit;
    stats_.sample_seconds += t.sample;
    stats_.forward_seconds += t.forward;
    if (plan.num_decode_tokens == 0) {
        return {};
    }
    window_steps_ += 1;
    window_decode_tokens_ += plan.num_decode_tokens;
    window_times_.plan += t.plan;
    window_times_.forward += t.forward;
    window_times_.enqueue += t.enqueue;
    window_times_.sample += t.sample;
    window_times_.commit += t.commit;
    if (window_steps_ < decode_log_interval_) {
        return {};
    }
    const double busy = window_times_.total();
    stats_.last_gen_throughput = busy > 0 ? static_cast<double>(window_decode_tokens_) / busy : 0.0;
    const double ms = 1000.0 / window_steps_;
    const double usage =
        stats_.capacity_tokens > 0
            ? static_cast<double>(scheduler_.used_tokens()) / stats_.capacity_tokens
            : 0.0;
    char line[512];
    std::snprintf(line, sizeof(line),
                  "Decode batch. #running-req: %d, #token: %lld, token usage: %.2f, gen "
                  "throughput (token/s): %.2f, #queue-req: %d, cuda graph: %s, ms per step: "
                  "scheduler %.3f (plan %.3f, commit %.3f), sampling %.3f, forward %.3f "
                  "(enqueued in %.3f)",
                  scheduler_.num_running(), static_cast<long long>(scheduler_.used_tokens()), usage,
                  stats_.last_gen_throughput, scheduler_.num_waiting(),
                  last_step_graphed_ ? "True" : "False",
                  (window_times_.plan + window_times_.commit) * ms, window_times_.plan * ms,
                  window_times_.commit * ms, window_times_.sample * ms, window_times_.forward * ms,
                  window_times_.enqueue * ms);
    window_steps_ = 0;
    window_decode_tokens_ = 0;
    window_times_ = StepTimes{};
    return line;
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
            pending_.reset();
            scheduler_.abort_all(std::string("Internal error: ") + e.what());
        }
    }
}

}  // namespace dsserve::runtime
