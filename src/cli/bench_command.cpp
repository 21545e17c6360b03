// `dsserve bench`: the serving benchmark (SGLang's bench_serving, spec §6) against any
// SGLang-compatible server, and `--sweep-concurrency` series with a CSV and a plot.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <string>

#include "bench/benchmark.h"
#include "bench/report.h"
#include "bench/sweep.h"
#include "bench/tokenizer_codec.h"
#include "cli/commands.h"
#include "cli/data_path.h"
#include "core/assets.h"
#include "core/error.h"
#include "core/file.h"
#include "core/log.h"

namespace dsserve::cli {
namespace {

struct BenchArgs {
    std::string backend = "sglang";
    std::string base_url;
    std::string host = "127.0.0.1";
    int port = 30000;
    std::string model;
    std::string tokenizer;
    std::string dataset_name = "sharegpt";
    std::string dataset_path;
    std::int64_t num_prompts = 1000;
    std::optional<std::int64_t> sharegpt_output_len;
    std::int64_t random_input_len = 1024;
    std::int64_t random_output_len = 1024;
    double random_range_ratio = 0.0;
    std::string request_rate = "inf";
    std::optional<std::int64_t> max_concurrency;
    std::int64_t warmup_requests = 1;
    std::int64_t request_timeout_s = 300;
    std::uint32_t seed = 1;
    bool disable_stream = false;
    bool disable_ignore_eos = false;
    std::string extra_request_body;
    std::string output_file;
    bool flush_cache = false;
    bool disable_progress = false;
    std::string sweep_concurrency;
    std::string sweep_prefix = "bench_sweep";
};

double parse_rate(const std::string& text) {
    if (text == "inf" || text == "Infinity") {
        return std::numeric_limits<double>::infinity();
    }
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    DS_CHECK(end != text.c_str() && *end == '\0' && v > 0, "--request-rate must be > 0 or inf");
    return v;
}

std::unique_ptr<bench::TokenCodec> load_codec(const std::string& dir) {
    if (dir.empty()) {
        return std::make_unique<bench::TokenizerCodec>(tokenizer::Tokenizer::from_json(
            assets::tokenizer_json(), assets::tokenizer_config_json()));
    }
    return std::make_unique<bench::TokenizerCodec>(tokenizer::Tokenizer::load(dir));
}

void append_line(const std::string& path, const std::string& line) {
    std::ofstream out(path, std::ios::app);
    DS_CHECK(out.good(), "cannot open ", path, " for appending");
    out << line << "\n";
}

void run_bench(const BenchArgs& a) {
    bench::BenchmarkConfig config;
    config.url = a.base_url.empty() ? bench::Url::from_host_port(a.host, a.port)
                                    : bench::Url::parse(a.base_url);
    config.backend_name = a.backend;
    const bench::Backend backend = bench::parse_backend(a.backend);
    config.request.stream = !a.disable_stream;
    config.request.ignore_eos = !a.disable_ignore_eos;
    if (!a.extra_request_body.empty()) {
        config.request.extra_body = Json::parse(a.extra_request_body, nullptr, false);
        DS_CHECK(config.request.extra_body.is_object(),
                 "--extra-request-body must be a JSON object");
    }
    config.request_rate = parse_rate(a.request_rate);
    config.max_concurrency = a.max_concurrency;
    DS_CHECK(!a.max_concurrency || *a.max_concurrency >= 1, "--max-concurrency must be >= 1");
    config.warmup_requests = a.warmup_requests;
    DS_CHECK(a.request_timeout_s >= 1, "--request-timeout must be at least 1 second");
    config.request_timeout = std::chrono::seconds(a.request_timeout_s);
    config.flush_cache = a.flush_cache;
    config.show_progress = !a.disable_progress;
    DS_CHECK(a.num_prompts >= 1, "--num-prompts must be at least 1");

    const auto codec = load_codec(a.tokenizer);
    const std::filesystem::path source =
        a.dataset_path.empty() ? datasets_dir() / "sharegpt" / "ShareGPT_V3_filtered_500.json"
                               : std::filesystem::path(a.dataset_path);
    const auto prompts = bench::load_sharegpt_prompts(source);
    bench::NumpyRandom np_rng(a.seed);
    const bench::RandomSpec spec{a.random_input_len, a.random_output_len, a.random_range_ratio};
    const auto n = static_cast<std::size_t>(a.num_prompts);
    std::vector<bench::DatasetRow> rows;
    if (a.dataset_name == "random") {
        rows = bench::sample_random_requests(prompts, *codec, spec, n, np_rng, a.seed);
    } else if (a.dataset_name == "sharegpt") {
        rows = bench::sample_sharegpt_requests(prompts, *codec, n, a.sharegpt_output_len, spec,
                                               np_rng, a.seed);
    } else {
        fail("unknown --dataset-name '", a.dataset_name, "' (expected sharegpt or random)");
    }
    if (backend != bench::Backend::kGenerate) {
        config.request.model = a.model.empty() ? bench::discover_model(config.url) : a.model;
    }

    bench::RunInfo info;
    info.backend = a.backend;
    info.dataset_name = a.dataset_name;
    info.request_rate = config.request_rate;
    info.num_prompts = a.num_prompts;
    info.sharegpt_output_len = a.sharegpt_output_len;
    info.random_input_len = a.random_input_len;
    info.random_output_len = a.random_output_len;
    info.random_range_ratio = a.random_range_ratio;
    const std::string output_file =
        a.output_file.empty() ? bench::default_output_file(info) : a.output_file;

    std::vector<std::int64_t> levels;
    if (!a.sweep_concurrency.empty()) {
        levels = bench::parse_concurrency_list(a.sweep_concurrency);
    }
    const bool sweep = !levels.empty();
    if (!sweep) {
        levels.push_back(a.max_concurrency.value_or(0));
    }
    std::vector<bench::SweepPoint> points;
    for (std::int64_t level : levels) {
        if (sweep) {
            config.max_concurrency = level;
        }
        info.max_concurrency = config.max_concurrency;
        const bench::BenchmarkResult result = bench::run_benchmark(config, rows, *codec, np_rng);
        const std::string failures = bench::format_failures(result.outputs);
        std::vector<std::string> errors;
        for (std::size_t i = 0; i < result.outputs.size() && errors.size() < 100; ++i) {
            if (!result.outputs[i].success) {
                errors.push_back(str_cat("request ", i, ": ", result.outputs[i].error));
            }
        }
        std::cout << bench::format_table(info, result.metrics);
        if (!failures.empty()) {
            std::cout << failures;
        }
        std::cout.flush();
        append_line(output_file, bench::metrics_json(info, result.metrics, errors).dump());
        points.push_back({level, result.metrics});
    }
    log::info("results appended to ", output_file);
    if (sweep) {
        const std::string csv = a.sweep_prefix + ".csv";
        const std::string png = a.sweep_prefix + ".png";
        write_file(csv, bench::sweep_csv(points));
        const std::string why =
            bench::plot_sweep(csv, png,
                              str_cat(a.backend, ", ", a.dataset_name, ", ", a.num_prompts,
                                      " prompts, ", config.url.str()));
        if (why.empty()) {
            std::printf("Sweep written to %s and %s\n", csv.c_str(), png.c_str());
        } else {
            std::printf("Sweep written to %s; no plot: %s\n", csv.c_str(), why.c_str());
        }
    }
}

}  // namespace

void add_bench_command(CLI::App& app) {
    auto args = std::make_shared<BenchArgs>();
    CLI::App* cmd = app.add_subcommand(
        "bench",
        "Serving benchmark against an SGLang-compatible server (like sglang.bench_serving)");
    cmd->add_option("--backend", args->backend,
                    "sglang / dsserve / sglang-native (/generate), sglang-oai / openai "
                    "(/v1/completions), sglang-oai-chat / openai-chat (/v1/chat/completions)")
        ->capture_default_str();
    cmd->add_option("--base-url", args->base_url, "server URL, e.g. http://127.0.0.1:30000");
    cmd->add_option("--host", args->host, "server host (when no --base-url)")
        ->capture_default_str();
    cmd->add_option("--port", args->port, "server port (when no --base-url)")
        ->capture_default_str();
    cmd->add_option("--model", args->model,
                    "the OpenAI \"model\" field (default: the first id of GET /v1/models)");
    cmd->add_option("--tokenizer", args->tokenizer,
                    "folder with tokenizer.json and tokenizer_config.json (default: the embedded "
                    "DeepSeek-V3.2 tokenizer)");
    cmd->add_option("--dataset-name", args->dataset_name, "sharegpt or random")
        ->capture_default_str();
    cmd->add_option("--dataset-path", args->dataset_path,
                    "ShareGPT JSON (default: the repository's 500-prompt subset)");
    cmd->add_option("--num-prompts", args->num_prompts, "number of requests")
        ->capture_default_str();
    cmd->add_option("--sharegpt-output-len", args->sharegpt_output_len,
                    "output length of every sharegpt request. The ShareGPT copy holds first "
                    "turns only (no replies), so without this option output lengths are drawn "
                    "like the random dataset's, from --random-output-len and "
                    "--random-range-ratio");
    cmd->add_option("--random-input-len", args->random_input_len,
                    "random dataset: maximum prompt tokens")
        ->capture_default_str();
    cmd->add_option("--random-output-len", args->random_output_len,
                    "random dataset (and sharegpt without --sharegpt-output-len): maximum output "
                    "tokens")
        ->capture_default_str();
    cmd->add_option("--random-range-ratio", args->random_range_ratio,
                    "lengths are uniform in [max(floor(L*ratio), 1), L]; 1.0 gives fixed lengths")
        ->capture_default_str();
    cmd->add_option("--request-rate", args->request_rate,
                    "requests per second (Poisson arrivals), or inf to send all at once")
        ->capture_default_str();
    cmd->add_option("--max-concurrency", args->max_concurrency,
                    "most requests in flight at once (default: no limit)");
    cmd->add_option("--warmup-requests", args->warmup_requests,
                    "requests sent before timing (copies of the first, at most 32 output tokens)")
        ->capture_default_str();
    cmd->add_option("--request-timeout", args->request_timeout_s,
                    "seconds without any data from the server after which a request fails (a "
                    "stream that keeps coming is never cut)")
        ->capture_default_str();
    cmd->add_option("--seed", args->seed, "seed of the dataset and arrival draws")
        ->capture_default_str();
    cmd->add_flag("--disable-stream", args->disable_stream, "ask for non-streamed responses");
    cmd->add_flag("--disable-ignore-eos", args->disable_ignore_eos,
                  "send ignore_eos: false (outputs may end early)");
    cmd->add_option("--extra-request-body", args->extra_request_body,
                    "JSON object merged into every request body, e.g. '{\"top_p\": 0.9}'");
    cmd->add_option("--output-file", args->output_file,
                    "JSONL file one result line is appended to per run (default: "
                    "{backend}_{MMDD}_{num_prompts}_{in}_{out}.jsonl or ..._{dataset}.jsonl)");
    cmd->add_flag("--flush-cache", args->flush_cache, "POST /flush_cache before timing");
    cmd->add_flag("--disable-progress", args->disable_progress, "no progress bar");
    cmd->add_option("--sweep-concurrency", args->sweep_concurrency,
                    "run once per max concurrency in this list (e.g. 1,2,4,8) and write "
                    "<prefix>.csv and <prefix>.png");
    cmd->add_option("--sweep-output", args->sweep_prefix, "file prefix of the sweep CSV and PNG")
        ->capture_default_str();
    cmd->callback([args] { run_bench(*args); });
}

}  // namespace dsserve::cli
