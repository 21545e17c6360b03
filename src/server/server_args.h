// Every `serve` flag of SGLang's DeepSeek-V3.2 deployment guide (spec serving-api.md §4), with
// SGLang's names and defaults. What this build cannot honour is refused or warned about by
// validate(), never silently ignored.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"

namespace dsserve::server {

struct ServerArgs {
    std::string model_path;
    std::string tokenizer_path;
    std::string served_model_name;
    std::string host = "127.0.0.1";
    int port = 30000;
    std::string api_key;
    std::string chat_template;
    std::string tool_call_parser;  // "" = choose for the model, "none" = off
    std::string reasoning_parser;  // likewise
    std::string json_model_override_args;
    std::string load_format = "auto";
    std::string device = "cpu";
    std::string precision = "auto";  // auto or fp32 (see backend::BackendOptions)
    std::string weight_version = "default";
    std::string sampling_defaults = "model";
    int threads = 0;
    int http_threads = 2;

    // Parallelism and hardware.
    int tp_size = 1, dp_size = 1, ep_size = 1, pp_size = 1;
    bool enable_dp_attention = false;
    int nnodes = 1, node_rank = 0;
    std::string dist_init_addr;
    int dist_timeout = 0;
    bool trust_remote_code = false;

    // Memory and scheduling.
    double mem_fraction_static = 0.0;  // 0: auto
    std::int64_t max_total_tokens = 0;
    int page_size = 1;
    std::int64_t context_length = 0;  // 0: from config
    int max_running_requests = 0;     // 0: auto
    int chunked_prefill_size = 0;     // 0: auto, -1: off
    bool disable_radix_cache = false;
    bool allow_auto_truncate = false;
    int stream_interval = 1;
    std::string kv_cache_dtype = "auto";

    // Kernels and backends (GPU only).
    std::string attention_backend;
    std::string nsa_prefill_backend, nsa_decode_backend;
    bool enable_nsa_prefill_context_parallel = false;
    std::string nsa_prefill_cp_mode;
    std::string moe_a2a_backend = "none";
    std::string deepep_mode = "auto";
    std::string deepep_config;
    std::string moe_runner_backend = "auto";
    std::string quantization;
    int cuda_graph_max_bs = 0;  // 0: auto (kDefaultCudaGraphMaxBs on a GPU)
    bool disable_cuda_graph = false;
    bool disable_overlap_schedule = false;
    bool enable_dp_lm_head = false;

    // Speculative decoding.
    std::string speculative_algorithm;
    int speculative_num_steps = 0, speculative_eagle_topk = 0, speculative_num_draft_tokens = 0;

    // Disaggregation.
    std::string disaggregation_mode = "null";
    int disaggregation_bootstrap_port = 8998;

    // Observability.
    bool enable_metrics = false;
    bool enable_metrics_for_all_schedulers = false;
    bool log_requests = false;
    int log_requests_level = 2;
    int decode_log_interval = 40;  // decode steps between "Decode batch" log lines
    bool enable_cache_report = false;

    // Refuses what this build cannot do, with a message saying what is missing; returns warnings
    // for flags that only tune GPU kernels and have no effect here.
    std::vector<std::string> validate() const;
    Json to_json() const;

    // The largest decode batch run through CUDA graphs: 0 on the CPU or with
    // --disable-cuda-graph, else --cuda-graph-max-bs (kDefaultCudaGraphMaxBs when unset), never
    // past --max-running-requests.
    static constexpr int kDefaultCudaGraphMaxBs = 256;
    int cuda_graph_batch() const;
};

}  // namespace dsserve::server
