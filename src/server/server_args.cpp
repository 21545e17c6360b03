#include "server/server_args.h"

#include <algorithm>

#include "backend/backend.h"
#include "core/error.h"

namespace dsserve::server {

std::vector<std::string> ServerArgs::validate() const {
    const std::string cpu =
        " This build runs the model on one device (the CPU, or one GPU with "
        "--device cuda).";
    DS_CHECK(device == "cpu" || backend::has_cuda_backend(), "--device ", device,
             ": this build has no CUDA backend (configure with -DDSSERVE_CUDA=ON where nvcc is "
             "installed); serve with --device cpu.");
    DS_CHECK(tp_size == 1, "--tp-size ", tp_size, " needs ", tp_size, " GPUs and NCCL.", cpu);
    DS_CHECK(dp_size == 1, "--dp-size ", dp_size, " needs data-parallel GPU workers.", cpu);
    DS_CHECK(ep_size == 1, "--ep-size ", ep_size, " needs expert-parallel GPUs.", cpu);
    DS_CHECK(pp_size == 1, "--pp-size ", pp_size, " needs pipeline-parallel GPUs.", cpu);
    DS_CHECK(nnodes == 1, "--nnodes ", nnodes,
             ": multi-node serving is not supported by this build.");
    DS_CHECK(!enable_dp_attention, "--enable-dp-attention needs several GPUs (dp > 1).", cpu);
    DS_CHECK(!enable_nsa_prefill_context_parallel,
             "--enable-nsa-prefill-context-parallel needs several GPUs.", cpu);
    DS_CHECK(disaggregation_mode == "null", "--disaggregation-mode ", disaggregation_mode,
             ": prefill/decode disaggregation is not supported by this build.");
    DS_CHECK(speculative_algorithm.empty(), "--speculative-algorithm ", speculative_algorithm,
             ": MTP speculative decoding is not implemented in this build yet (the MTP layer is "
             "loaded and `dsserve forward --mtp` evaluates it).");
    DS_CHECK(kv_cache_dtype == "auto" || kv_cache_dtype == "bf16" || kv_cache_dtype == "bfloat16" ||
                 kv_cache_dtype == "fp32" || kv_cache_dtype == "float32",
             "--kv-cache-dtype ", kv_cache_dtype,
             ": an FP8 KV cache is not implemented yet; use auto, bf16 or fp32.");
    DS_CHECK(quantization.empty() || quantization == "fp8", "--quantization ", quantization,
             ": only the checkpoint's block-FP8 format is supported.");
    DS_CHECK(moe_a2a_backend == "none", "--moe-a2a-backend ", moe_a2a_backend,
             " needs expert parallelism over GPUs.", cpu);
    DS_CHECK(page_size >= 1, "--page-size must be at least 1");
    DS_CHECK(port > 0 && port < 65536, "--port must be between 1 and 65535");
    DS_CHECK(mem_fraction_static >= 0.0 && mem_fraction_static < 1.0,
             "--mem-fraction-static must be in [0, 1)");
    DS_CHECK(chunked_prefill_size == -1 || chunked_prefill_size >= 0,
             "--chunked-prefill-size must be -1 or positive");
    DS_CHECK(max_running_requests >= 0, "--max-running-requests must not be negative");
    DS_CHECK(cuda_graph_max_bs >= 0, "--cuda-graph-max-bs must not be negative");
    DS_CHECK(sampling_defaults == "model" || sampling_defaults == "openai",
             "--sampling-defaults must be model or openai");
    DS_CHECK(log_requests_level >= 0 && log_requests_level <= 3,
             "--log-requests-level must be 0-3");
    std::vector<std::string> warnings;
    // Accepted for command-line compatibility with SGLang; each says why it changes nothing here
    // (on the GPU as well: a user moving a deployment command over should not guess).
    auto gpu_only = [&](bool set, const std::string& flag, const std::string& on_cuda) {
        if (set) {
            warnings.push_back(
                device == "cpu" ? flag + " tunes GPU kernels and has no effect on the CPU backend."
                                : flag + " has no effect: " + on_cuda + ".");
        }
    };
    const std::string one_kernel = "the CUDA backend has one kernel for each op";
    gpu_only(!attention_backend.empty(), "--attention-backend " + attention_backend, one_kernel);
    gpu_only(!nsa_prefill_backend.empty(), "--nsa-prefill-backend " + nsa_prefill_backend,
             one_kernel);
    gpu_only(!nsa_decode_backend.empty(), "--nsa-decode-backend " + nsa_decode_backend, one_kernel);
    gpu_only(!nsa_prefill_cp_mode.empty(), "--nsa-prefill-cp-mode " + nsa_prefill_cp_mode,
             "prefill context parallelism needs several GPUs");
    gpu_only(moe_runner_backend != "auto", "--moe-runner-backend " + moe_runner_backend,
             one_kernel);
    if (device == "cpu" && (cuda_graph_max_bs != 0 || disable_cuda_graph)) {
        warnings.push_back(
            "--cuda-graph-max-bs/--disable-cuda-graph tune GPU decode steps and have no effect on "
            "the CPU backend.");
    }
    gpu_only(deepep_mode != "auto" || !deepep_config.empty(), "--deepep-mode/--deepep-config",
             "DeepEP needs expert parallelism over several GPUs");
    if (disable_overlap_schedule && device == "cpu") {
        warnings.push_back(
            "--disable-overlap-schedule has no effect on the CPU backend, which never overlaps "
            "steps (its ops finish as they are called).");
    }
    gpu_only(enable_dp_lm_head, "--enable-dp-lm-head", "it needs data-parallel attention ranks");
    if (!dist_init_addr.empty() || dist_timeout != 0) {
        warnings.push_back("--dist-init-addr/--dist-timeout have no effect on a single process.");
    }
    if (trust_remote_code) {
        warnings.push_back(
            "--trust-remote-code has no effect: dsserve never runs code from a checkpoint.");
    }
    if (enable_metrics_for_all_schedulers) {
        warnings.push_back("--enable-metrics-for-all-schedulers: there is one scheduler.");
    }
    return warnings;
}

Json ServerArgs::to_json() const {
    return Json{
        {"model_path", model_path},
        {"tokenizer_path", tokenizer_path.empty() ? model_path : tokenizer_path},
        {"served_model_name", served_model_name},
        {"host", host},
        {"port", port},
        {"api_key", api_key.empty() ? Json(nullptr) : Json("***")},
        {"chat_template", chat_template.empty() ? Json(nullptr) : Json(chat_template)},
        {"tool_call_parser", tool_call_parser.empty() ? Json(nullptr) : Json(tool_call_parser)},
        {"reasoning_parser", reasoning_parser.empty() ? Json(nullptr) : Json(reasoning_parser)},
        {"json_model_override_args", json_model_override_args},
        {"load_format", load_format},
        {"device", device},
        {"weight_version", weight_version},
        {"sampling_defaults", sampling_defaults},
        {"tp_size", tp_size},
        {"dp_size", dp_size},
        {"ep_size", ep_size},
        {"pp_size", pp_size},
        {"enable_dp_attention", enable_dp_attention},
        {"nnodes", nnodes},
        {"node_rank", node_rank},
        {"mem_fraction_static", mem_fraction_static},
        {"max_total_tokens", max_total_tokens},
        {"page_size", page_size},
        {"context_length", context_length},
        {"max_running_requests", max_running_requests},
        {"chunked_prefill_size", chunked_prefill_size},
        {"disable_radix_cache", disable_radix_cache},
        {"allow_auto_truncate", allow_auto_truncate},
        {"stream_interval", stream_interval},
        {"kv_cache_dtype", kv_cache_dtype},
        {"attention_backend", attention_backend.empty() ? Json(nullptr) : Json(attention_backend)},
        {"nsa_prefill_backend",
         nsa_prefill_backend.empty() ? Json(nullptr) : Json(nsa_prefill_backend)},
        {"nsa_decode_backend",
         nsa_decode_backend.empty() ? Json(nullptr) : Json(nsa_decode_backend)},
        {"moe_a2a_backend", moe_a2a_backend},
        {"moe_runner_backend", moe_runner_backend},
        {"cuda_graph_max_bs", cuda_graph_batch() == 0 ? Json(nullptr) : Json(cuda_graph_batch())},
        {"disable_cuda_graph", disable_cuda_graph || cuda_graph_batch() == 0},
        {"speculative_algorithm",
         speculative_algorithm.empty() ? Json(nullptr) : Json(speculative_algorithm)},
        {"disaggregation_mode", disaggregation_mode},
        {"enable_metrics", enable_metrics},
        {"log_requests", log_requests},
        {"log_requests_level", log_requests_level},
        {"decode_log_interval", decode_log_interval},
        {"enable_cache_report", enable_cache_report}};
}

int ServerArgs::cuda_graph_batch() const {
    if (device == "cpu" || disable_cuda_graph) {
        return 0;
    }
    const int wanted = cuda_graph_max_bs > 0 ? cuda_graph_max_bs : kDefaultCudaGraphMaxBs;
    return max_running_requests > 0 ? std::min(wanted, max_running_requests) : wanted;
}

}  // namespace dsserve::server
