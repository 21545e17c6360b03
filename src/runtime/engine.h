// The engine: one thread that owns the scheduler and the model and runs steps back to back.
// Other threads talk to it only through submit / abort / flush_cache and read stats().
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "model/deepseek_v32.h"
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
    std::int64_t prefill_tokens = 0;  // computed, not served from the cache
    std::int64_t decode_tokens = 0;
    double last_gen_throughput = 0.0;  // tokens/s over the last decode-logging window
    double schedule_seconds = 0.0;     // scheduler time (plan + commit + sampling), total
    double forward_seconds = 0.0;
};

class Engine {
public:
    Engine(model::DeepseekV32& model, const SchedulerConfig& config);
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
    void loop();
    void refresh_stats_locked();

    model::DeepseekV32& model_;
    SchedulerConfig config_;
    model::KvCache cache_;
    Scheduler scheduler_;

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
};

}  // namespace dsserve::runtime
