// The engine: one thread that owns the scheduler and the model and runs steps back to back.
// Other threads talk to it only through submit / abort / flush_cache and read stats().
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "model/deepseek_v32.h"
#include "runtime/decode_graphs.h"
#include "runtime/scheduler.h"

namespace dsserve::runtime {

struct EngineStats {
    int num_running = 0;
    int num_waiting = 0;
    std::int64_t used_tokens = 0;
    std::int64_t capacity_tokens = 0;
    std::int64_t cached_tokens_in_tree = 0;
    std::int64_t retractions = 0;
    std::int64_t steps = 0;
    std::int64_t overlapped_steps = 0;  // enqueued before the step before had its tokens
    std::int64_t graph_steps = 0;       // decode steps replayed from a recorded graph
    std::int64_t prefill_tokens = 0;    // computed, not served from the cache
    std::int64_t decode_tokens = 0;
    // Decode tokens per second of step time over the last decode-log window (0 until one closes).
    double last_gen_throughput = 0.0;

    // Seconds summed over all steps, by who spent them. The scheduler's own work is kept apart
    // from the model and from sampling because on a GPU it is the part the host adds between
    // device steps. The forward's time includes waiting for the device to finish it.
    double plan_seconds = 0.0;      // planning, prefix-cache matching and eviction, page
                                    // allocation, batch assembly
    double commit_seconds = 0.0;    // applying sampled tokens, stop checks, handing outputs over,
                                    // returning pages and the prefix-cache insert
    double schedule_seconds = 0.0;  // plan_seconds + commit_seconds: the scheduler's own time
    double sample_seconds = 0.0;    // greedy picks on the device, copying the rows the host
                                    // sampler needs, penalties, min_tokens masking, sampling,
                                    // logprobs
    double forward_seconds = 0.0;   // the model's forward
};

// The parts of one step, in seconds.
struct StepTimes {
    double plan = 0.0;
    double forward = 0.0;
    double enqueue = 0.0;  // of forward: until the host has handed the device all its work
    double sample = 0.0;
    double commit = 0.0;
    double total() const { return plan + forward + sample + commit; }
};

class Engine {
public:
    // Every decode_log_interval decode steps the engine logs the batch and where the time went,
    // and refreshes last_gen_throughput (SGLang's --decode-log-interval). device_sampling: the
    // logits stay on the backend, greedy rows are picked there (Ops::argmax_rows), rows at
    // temperature > 0 with nothing to apply to the logits are drawn there (Ops::sample_rows,
    // with the uniform from the request's generator) and only the rows that need the host
    // sampler are copied (Ops::rows_to_host); off, every step copies all logits to the host, as
    // before. The tokens are the same either way, up to the rounding Ops::sample_rows allows.
    //
    // overlap (SGLang's overlap schedule, off with --disable-overlap-schedule): when every row
    // of a step is picked on the device and the backend can leave the picks there
    // (Ops::pick_tokens_async), the engine plans and enqueues the next step before this one's
    // tokens reach the host; the next step's ids name the picks, and this step's tokens are
    // committed while the next runs. The device never waits for the host between steps. A
    // request that stops on a token is seen one step late: its row in the step after is
    // computed and discarded. Other steps (host-sampled rows, logprobs, a full KV pool, aborts)
    // run one after another as without it. The tokens are the same either way.
    //
    // graph_max_batch > 0 (--cuda-graph-max-bs): decode steps of up to that many requests run
    // through recorded graphs where the backend records them (DecodeGraphs); the cache gets one
    // spare slot for the padding rows.
    Engine(model::DeepseekV32& model, const SchedulerConfig& config, int decode_log_interval = 40,
           bool device_sampling = true, bool overlap = false, int graph_max_batch = 0);
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    void start();
    void stop();  // aborts everything in flight, joins the thread

    void submit(GenerateRequest request);
    void abort(const std::string& rid);
    // Clears the prefix cache when no request is in flight; false otherwise.
    bool flush_cache();

    EngineStats stats() const;
    const SchedulerConfig& config() const { return config_; }
    const model::ModelConfig& model_config() const { return model_.config(); }

    // One step on the calling thread (tests drive the engine without its thread).
    bool step();
    void drain_inbox();

private:
    struct Sampled {
        std::vector<std::int32_t> tokens;
        std::vector<TokenLogprob> logprobs;
    };

    // How a row that samples gets its token.
    enum class Pick { device_argmax, device_draw, host };
    // Each row's way, decided before any is picked.
    struct Choice {
        std::vector<std::size_t> sampled;  // the plan entries that sample, in order
        std::vector<Pick> picks;           // per sampled entry
        std::vector<std::int64_t> greedy_rows, host_rows;
        std::vector<model::RowSampling> draws;
    };
    // A step whose tokens are still on the device (overlap).
    struct Pending {
        StepPlan plan;
        std::int32_t first_slot = 0;
        std::vector<std::int32_t> slot_of;  // per sampled entry: its token slot
    };

    void loop();
    Choice choose(const StepPlan& plan);
    Sampled sample(const StepPlan& plan, const Choice& choice, const model::ForwardResult& result);
    // Enqueues the picks of a step whose rows all pick on the device into the token slots and
    // advances the scheduler with placeholders for them; nothing where the step must run
    // synchronously (overlap off, a host-sampled row, a backend that cannot).
    std::optional<Pending> defer(StepPlan& plan, const Choice& choice,
                                 const model::ForwardResult& result);
    // Waits for the pending step's tokens and commits them; adds the wait to `wait` and the
    // scheduler's work to `commit`. another_step_in_flight: a step enqueued since names its
    // requests.
    void settle(bool another_step_in_flight, double& wait, double& commit);
    // The host sampler on one row: penalties, min_new_tokens bans, the draw, logprobs. `row` is
    // scratch.
    std::int32_t sample_on_host(Request& req, std::span<const float> raw, std::vector<float>& row,
                                TokenLogprob& logprob);
    // Books a step (ahead: enqueued while the one before was pending) and logs its window.
    void record(const StepPlan& plan, const StepTimes& times, bool ahead);
    // Books a step's times; returns the decode log line when the step closes a window.
    std::string record_locked(const StepPlan& plan, const StepTimes& times);
    void refresh_stats_locked();

    model::DeepseekV32& model_;
    SchedulerConfig config_;
    bool device_sampling_;
    bool overlap_;
    std::optional<Pending> pending_;
    int next_bank_ = 0;  // token slots alternate between two halves, one per step in flight
    model::KvCache cache_;
    Scheduler scheduler_;
    std::optional<DecodeGraphs> graphs_;
    bool last_step_graphed_ = false;

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::vector<GenerateRequest> inbox_;
    std::vector<std::string> aborts_;
    int flush_requests_ = 0;
    std::vector<std::pair<int, bool>> flush_results_;
    std::condition_variable flushed_;
    int flush_seq_ = 0;
    bool stop_ = false;
    std::thread thread_;
    EngineStats stats_;
    std::uint64_t seed_counter_ = 0x5eed;

    // The decode steps since the last decode log line.
    int decode_log_interval_;
    int window_steps_ = 0;
    std::int64_t window_decode_tokens_ = 0;
    StepTimes window_times_;
};

}  // namespace dsserve::runtime
