#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "cli/commands.h"
#include "cli/model_path.h"
#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "model/kv_cache.h"
#include "parsers/tool_parser.h"
#include "runtime/engine.h"
#include "runtime/model_runner.h"
#include "server/api.h"
#include "server/http.h"
#include "web/web.h"

namespace dsserve::cli {
namespace {

// Bytes for the KV pool. On a GPU, as in SGLang: --mem-fraction-static of the device holds the
// weights (already loaded) and the pool, so the pool gets that share less what is in use now.
// On the CPU, where the weights live among everything else, a fraction of available RAM.
std::uint64_t kv_pool_bytes(const model::Ops::MemoryInfo& mem, const server::ServerArgs& a) {
    if (a.device == "cpu") {
        const double fraction = a.mem_fraction_static > 0 ? a.mem_fraction_static : 0.1;
        return static_cast<std::uint64_t>(fraction * static_cast<double>(mem.free));
    }
    const double fraction = a.mem_fraction_static > 0 ? a.mem_fraction_static : 0.85;
    const double budget = fraction * static_cast<double>(mem.total);
    const double used = static_cast<double>(mem.total - mem.free);
    DS_CHECK(budget > used, "--mem-fraction-static ", fraction, ": the weights already use ",
             used / (1 << 30), " GiB of the ", budget / (1 << 30),
             " GiB it allows; raise it or load fewer layers");
    return static_cast<std::uint64_t>(budget - used);
}

int g_stop_pipe[2] = {-1, -1};

void on_stop_signal(int sig) {
    unsigned char b = static_cast<unsigned char>(sig);
    [[maybe_unused]] auto n = ::write(g_stop_pipe[1], &b, 1);
}

void install_stop_signals() {
    DS_CHECK(::pipe(g_stop_pipe) == 0, "cannot create a pipe for signal handling");
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
}

// The signal number, or 0 when released without one.
int wait_for_stop_signal() {
    unsigned char b = 0;
    while (::read(g_stop_pipe[0], &b, 1) < 0 && errno == EINTR) {
    }
    return b;
}

void release_stop_waiter() {
    on_stop_signal(0);
}

std::string lower(std::string s) {
    for (auto& c : s) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return s;
}

// SGLang picks nothing by itself; dsserve picks the parsers the deployment guide prescribes for a
// DeepSeek-V3.2 checkpoint and says so.
void choose_parsers(server::ServerArgs& args, server::ServerContext& ctx,
                    const model::ModelConfig& config) {
    const std::string name = lower(args.served_model_name + " " + args.model_path);
    ctx.speciale = name.find("speciale") != std::string::npos;
    const bool exp = name.find("exp") != std::string::npos ||
                     lower(args.chat_template).find("deepseekv32") != std::string::npos;
    const bool v32 = config.architecture == "DeepseekV32ForCausalLM";
    std::string reasoning = args.reasoning_parser, tool = args.tool_call_parser;
    if (reasoning.empty()) {
        reasoning = v32 ? "deepseek-v3" : "none";
        log::info("reasoning parser: ", reasoning, " (chosen for ", config.architecture,
                  "; --reasoning-parser none turns it off)");
    }
    if (tool.empty()) {
        tool = !v32 || ctx.speciale ? "none" : exp ? "deepseekv31" : "deepseekv32";
        log::info("tool-call parser: ", tool,
                  ctx.speciale ? " (DeepSeek-V3.2-Speciale has no tool calling)"
                  : exp        ? " (the V3.2-Exp template uses the V3.1 call format)"
                               : "",
                  "; --tool-call-parser none turns it off");
    }
    DS_CHECK(reasoning == "none" || reasoning == "deepseek-v3", "--reasoning-parser '", reasoning,
             "' is not supported (deepseek-v3 or none)");
    if (tool != "none") {
        parsers::check_tool_parser_name(tool);
        parsers::check_tool_parser_allowed(
            ctx.speciale ? "DeepSeek-V3.2-Speciale" : args.model_path, tool);
    }
    ctx.reasoning_parser = reasoning == "none" ? "" : reasoning;
    ctx.tool_parser = tool == "none" ? "" : tool;
}

}  // namespace

void add_serve_command(CLI::App& app) {
    auto args = std::make_shared<server::ServerArgs>();
    auto* cmd =
        app.add_subcommand("serve", "Serve the model over SGLang- and OpenAI-compatible HTTP APIs");
    auto& o = *args;
    cmd->add_option("--model-path,--model", o.model_path,
                    "Checkpoint directory (default: the embedded tiny model)");
    cmd->add_option("--tokenizer-path", o.tokenizer_path,
                    "Tokenizer directory (default: the model path)");
    cmd->add_option("--served-model-name", o.served_model_name,
                    "Name in /v1/models (default: the model path)");
    cmd->add_option("--host", o.host)->capture_default_str();
    cmd->add_option("--port", o.port)->capture_default_str();
    cmd->add_option("--api-key", o.api_key, "Require Authorization: Bearer KEY");
    cmd->add_option("--chat-template", o.chat_template, "Jinja chat template file");
    cmd->add_option("--tool-call-parser", o.tool_call_parser,
                    "deepseekv32, deepseekv31 or none (default: by model)");
    cmd->add_option("--reasoning-parser", o.reasoning_parser,
                    "deepseek-v3 or none (default: by model)");
    cmd->add_option("--json-model-override-args", o.json_model_override_args,
                    "JSON object of config.json overrides");
    cmd->add_option("--load-format", o.load_format, "auto or dummy")->capture_default_str();
    cmd->add_option("--device", o.device, "cpu, cuda or cuda:N")->capture_default_str();
    cmd->add_option("--precision", o.precision,
                    "auto (block-FP8 linear layers on a GPU) or fp32 (every weight in float32)")
        ->capture_default_str();
    cmd->add_option("--threads", o.threads, "CPU threads for the model (default: all cores)");
    cmd->add_option("--http-threads", o.http_threads, "HTTP worker threads")->capture_default_str();
    cmd->add_option("--weight-version", o.weight_version)->capture_default_str();
    cmd->add_option("--sampling-defaults", o.sampling_defaults,
                    "model (generation_config.json) or openai")
        ->capture_default_str();
    cmd->add_option("--tp-size,--tensor-parallel-size,--tp", o.tp_size)->capture_default_str();
    cmd->add_option("--dp-size,--data-parallel-size,--dp", o.dp_size)->capture_default_str();
    cmd->add_option("--ep-size,--expert-parallel-size,--ep", o.ep_size)->capture_default_str();
    cmd->add_option("--pp-size,--pipeline-parallel-size", o.pp_size)->capture_default_str();
    cmd->add_flag("--enable-dp-attention", o.enable_dp_attention);
    cmd->add_option("--nnodes", o.nnodes)->capture_default_str();
    cmd->add_option("--node-rank", o.node_rank)->capture_default_str();
    cmd->add_option("--dist-init-addr,--nccl-init-addr", o.dist_init_addr);
    cmd->add_option("--dist-timeout", o.dist_timeout);
    cmd->add_flag("--trust-remote-code", o.trust_remote_code);
    cmd->add_option("--mem-fraction-static", o.mem_fraction_static,
                    "Fraction of memory for weights and the KV pool (CPU: of available RAM)");
    cmd->add_option("--max-total-tokens", o.max_total_tokens,
                    "KV pool size in tokens (overrides the fraction)");
    cmd->add_option("--page-size", o.page_size, "KV page size in tokens")->capture_default_str();
    cmd->add_option("--context-length", o.context_length,
                    "Max tokens per sequence (default: from config)");
    cmd->add_option("--max-running-requests", o.max_running_requests);
    cmd->add_option("--chunked-prefill-size", o.chunked_prefill_size,
                    "Max prefill tokens per step; -1 disables");
    cmd->add_flag("--disable-radix-cache", o.disable_radix_cache);
    cmd->add_flag("--allow-auto-truncate", o.allow_auto_truncate);
    cmd->add_option("--stream-interval", o.stream_interval)->capture_default_str();
    cmd->add_option("--kv-cache-dtype", o.kv_cache_dtype,
                    "auto (bf16 on a GPU, fp32 on the CPU or with --precision fp32), bf16 or fp32")
        ->capture_default_str();
    cmd->add_option("--attention-backend", o.attention_backend);
    cmd->add_option("--nsa-prefill-backend,--dsa-prefill-backend,--nsa-prefill",
                    o.nsa_prefill_backend);
    cmd->add_option("--nsa-decode-backend,--dsa-decode-backend,--nsa-decode", o.nsa_decode_backend);
    cmd->add_flag("--enable-nsa-prefill-context-parallel,--enable-prefill-cp",
                  o.enable_nsa_prefill_context_parallel);
    cmd->add_option("--nsa-prefill-cp-mode,--cp-strategy", o.nsa_prefill_cp_mode);
    cmd->add_option("--moe-a2a-backend", o.moe_a2a_backend)->capture_default_str();
    cmd->add_option("--deepep-mode", o.deepep_mode)->capture_default_str();
    cmd->add_option("--deepep-config", o.deepep_config);
    cmd->add_option("--moe-runner-backend", o.moe_runner_backend)->capture_default_str();
    cmd->add_option("--quantization", o.quantization);
    cmd->add_option("--cuda-graph-max-bs,--cuda-graph-max-bs-decode", o.cuda_graph_max_bs);
    cmd->add_flag("--disable-cuda-graph", o.disable_cuda_graph);
    cmd->add_flag("--disable-overlap-schedule", o.disable_overlap_schedule);
    cmd->add_flag("--enable-dp-lm-head", o.enable_dp_lm_head);
    cmd->add_option("--speculative-algorithm", o.speculative_algorithm);
    cmd->add_option("--speculative-num-steps", o.speculative_num_steps);
    cmd->add_option("--speculative-eagle-topk", o.speculative_eagle_topk);
    cmd->add_option("--speculative-num-draft-tokens", o.speculative_num_draft_tokens);
    cmd->add_option("--disaggregation-mode", o.disaggregation_mode)->capture_default_str();
    cmd->add_option("--disaggregation-bootstrap-port", o.disaggregation_bootstrap_port);
    cmd->add_flag("--enable-metrics", o.enable_metrics);
    cmd->add_flag("--enable-metrics-for-all-schedulers", o.enable_metrics_for_all_schedulers);
    cmd->add_flag("--log-requests", o.log_requests);
    cmd->add_option("--log-requests-level", o.log_requests_level)->capture_default_str();
    cmd->add_option("--decode-log-interval", o.decode_log_interval)
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_flag("--enable-cache-report", o.enable_cache_report);
    cmd->callback([args] {
        auto t0 = std::chrono::steady_clock::now();
        auto& a = *args;
        for (const auto& w : a.validate()) {
            log::warn(w);
        }
        // SIGINT/SIGTERM only write to a pipe; a waiting thread stops the server, so shutdown
        // happens in order whichever thread (BLAS workers exist before main) took the signal.
        install_stop_signals();

        runtime::ModelOptions mo;
        mo.model_path = resolve_model_path(a.model_path);
        if (a.model_path.empty()) {
            a.model_path = mo.model_path.string();
        }
        mo.override_args = a.json_model_override_args;
        mo.load_format = a.load_format;
        mo.backend.device = a.device;
        mo.backend.precision = a.precision;
        mo.backend.num_threads = static_cast<std::size_t>(std::max(0, a.threads));
        mo.kv_cache_dtype = a.kv_cache_dtype;
        runtime::LoadedModel loaded(mo);
        const auto& config = loaded.config();

        server::ServerContext ctx;
        ctx.args = a;
        ctx.model_name = a.served_model_name.empty() ? a.model_path : a.served_model_name;
        ctx.context_length =
            a.context_length > 0
                ? std::min<std::int64_t>(a.context_length, config.max_position_embeddings)
                : config.max_position_embeddings;
        choose_parsers(a, ctx, config);
        auto tokenizer = tokenizer::Tokenizer::load(
            a.tokenizer_path.empty() ? mo.model_path : std::filesystem::path(a.tokenizer_path));
        ctx.tokenizer = &tokenizer;
        ctx.prompt_builder =
            std::make_unique<chat::ChatPromptBuilder>(chat::ChatPromptBuilder::from_model_dir(
                a.tokenizer_path.empty() ? mo.model_path : std::filesystem::path(a.tokenizer_path),
                a.chat_template.empty() ? std::nullopt
                                        : std::optional<std::filesystem::path>(a.chat_template)));
        auto gen_path = mo.model_path / "generation_config.json";
        if (std::filesystem::exists(gen_path)) {
            Json gen = Json::parse(read_file(gen_path), nullptr, false);
            if (gen.is_object()) {
                for (const char* k : {"temperature", "top_p"}) {
                    if (gen.contains(k) && gen[k].is_number()) {
                        ctx.generation_defaults[k] = gen[k];
                    }
                }
            }
        }

        // The KV pool: --max-total-tokens, else a fraction of available memory.
        const std::size_t per_token =
            model::KvCache::bytes_per_token(config, loaded.model().cache_storage());
        std::int64_t tokens = a.max_total_tokens;
        if (tokens <= 0) {
            tokens = static_cast<std::int64_t>(
                kv_pool_bytes(loaded.model().ops().memory_info(), a) / per_token);
            tokens = std::min<std::int64_t>(tokens, 262144);
        }
        runtime::SchedulerConfig sc;
        sc.page_size = a.page_size;
        sc.num_pages = static_cast<std::int32_t>(std::max<std::int64_t>(1, tokens / a.page_size));
        sc.max_running_requests = a.max_running_requests > 0 ? a.max_running_requests : 256;
        sc.chunked_prefill_size = a.chunked_prefill_size == 0 ? 2048 : a.chunked_prefill_size;
        sc.context_length = ctx.context_length;
        sc.prefix_cache = !a.disable_radix_cache;
        sc.eos_token_id = config.eos_token_id;
        // The overlap schedule pays where the device runs ahead of the host; on the CPU backend
        // every op finishes as it is called, so it would only add a discarded step at each stop.
        const bool overlap = a.device.starts_with("cuda") && !a.disable_overlap_schedule;
        runtime::Engine engine(loaded.model(), sc, a.decode_log_interval,
                               /*device_sampling=*/true, overlap, a.cuda_graph_batch());
        ctx.engine = &engine;
        ctx.metrics = std::make_unique<server::Metrics>(ctx.model_name);
        // The page at "/" and its files under "/static/", compiled into the binary (src/web).
        ctx.web = [](const std::string& path, std::string& body, std::string& content_type) {
            std::optional<web::Asset> asset = web::asset(path);
            if (!asset) {
                return false;
            }
            body.assign(asset->body);
            content_type.assign(asset->content_type);
            return true;
        };
        engine.start();

        server::Api api(ctx);
        server::HttpServerOptions ho;
        ho.host = a.host;
        ho.port = static_cast<std::uint16_t>(a.port);
        ho.threads = std::max(1, a.http_threads);
        server::HttpServer http(
            ho, [&api](server::HttpRequest r, std::shared_ptr<server::Responder> resp) {
                api.handle(std::move(r), std::move(resp));
            });
        auto port = http.listen();
        ctx.startup_seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        ctx.ready = true;
        const model::Storage mla = loaded.model().cache_storage();
        const bool fp8_index =
            loaded.config().sparse_attention &&
            model::KvCache::index_key_storage(loaded.config(), mla) == model::Storage::fp8_row;
        log::info("KV cache: ", static_cast<std::int64_t>(sc.num_pages) * sc.page_size, " tokens (",
                  per_token, " bytes per token, MLA rows in ",
                  mla == model::Storage::bf16 ? "bfloat16" : "float32",
                  fp8_index ? ", indexer keys in FP8" : "", "), page size ", sc.page_size,
                  ", context length ", ctx.context_length);
        if (a.cuda_graph_batch() > 0) {
            log::info("CUDA graphs: decode batches of up to ", a.cuda_graph_batch(),
                      " requests, recorded on first use (batch sizes ",
                      runtime::DecodeGraphs::batch_sizes(a.cuda_graph_batch()).size(),
                      ", each per context bound); --disable-cuda-graph turns them off");
        }
        log::info("dsserve is ready: serving ", ctx.model_name, " on http://", a.host, ":", port,
                  " (startup ", ctx.startup_seconds, " s)");

        std::thread waiter([&http] {
            int sig = wait_for_stop_signal();
            if (sig > 0) {
                log::info("received ", sig == SIGINT ? "SIGINT" : "SIGTERM", ", shutting down");
            }
            http.stop();
        });
        http.run();
        ctx.ready = false;
        engine.stop();
        // run() also returns if the server stops for another reason; release the waiter.
        release_stop_waiter();
        waiter.join();
        log::info("dsserve stopped");
    });
}

}  // namespace dsserve::cli
