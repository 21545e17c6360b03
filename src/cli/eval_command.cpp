// `dsserve eval gsm8k` and `dsserve eval mmlu`: SGLang's few_shot_gsm8k and MMLU harnesses
// (spec §7) against any server with the native /generate route.
#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>

#include "bench/gsm8k.h"
#include "bench/mmlu.h"
#include "cli/commands.h"
#include "cli/data_path.h"
#include "core/error.h"
#include "core/file.h"
#include "core/json.h"

namespace dsserve::cli {
namespace {

struct ServerArgs {
    std::string base_url;
    std::string host = "http://127.0.0.1";
    int port = 30000;
    std::int64_t request_timeout_s = 600;

    std::chrono::seconds request_timeout() const {
        DS_CHECK(request_timeout_s >= 1, "--request-timeout must be at least 1 second");
        return std::chrono::seconds(request_timeout_s);
    }
    bench::Url url() const {
        return base_url.empty() ? bench::Url::from_host_port(host, port)
                                : bench::Url::parse(base_url);
    }
};

void add_server_options(CLI::App* cmd, ServerArgs& s) {
    cmd->add_option("--host", s.host, "server host")->capture_default_str();
    cmd->add_option("--port", s.port, "server port")->capture_default_str();
    cmd->add_option("--base-url", s.base_url, "server URL (instead of --host/--port)");
    cmd->add_option("--request-timeout", s.request_timeout_s,
                    "seconds without an answer after which a question is scored as failed")
        ->capture_default_str();
}

struct Gsm8kArgs {
    ServerArgs server;
    bench::Gsm8kOptions options;
    std::string data_path;
    std::string dump;
    bool disable_progress = false;
};

struct MmluArgs {
    ServerArgs server;
    bench::MmluOptions options;
    std::string data_dir;
    bool disable_progress = false;
};

void run_gsm8k(Gsm8kArgs& a) {
    a.options.url = a.server.url();
    a.options.request_timeout = a.server.request_timeout();
    a.options.data = a.data_path.empty() ? datasets_dir() / "gsm8k" / "test.jsonl"
                                         : std::filesystem::path(a.data_path);
    a.options.show_progress = !a.disable_progress;
    const bench::Gsm8kResult r = bench::run_gsm8k(a.options);
    std::cout << bench::format_gsm8k(r);
    if (!a.dump.empty()) {
        std::string out;
        for (std::size_t i = 0; i < r.outputs.size(); ++i) {
            out += Json({{"index", i},
                         {"output", r.outputs[i]},
                         {"pred", r.preds[i] ? Json(*r.preds[i]) : Json(nullptr)},
                         {"label", r.labels[i] ? Json(*r.labels[i]) : Json(nullptr)}})
                       .dump() +
                   "\n";
        }
        write_file(a.dump, out);
    }
}

void run_mmlu(MmluArgs& a) {
    a.options.url = a.server.url();
    a.options.request_timeout = a.server.request_timeout();
    a.options.data_dir =
        a.data_dir.empty() ? datasets_dir() / "mmlu" : std::filesystem::path(a.data_dir);
    a.options.show_progress = !a.disable_progress;
    std::cout << bench::format_mmlu(bench::run_mmlu(a.options));
}

}  // namespace

void add_eval_command(CLI::App& app) {
    CLI::App* eval = app.add_subcommand("eval", "Accuracy harnesses (SGLang's GSM8K and MMLU)");
    eval->require_subcommand(1);

    auto g = std::make_shared<Gsm8kArgs>();
    CLI::App* gsm = eval->add_subcommand(
        "gsm8k", "few-shot GSM8K as sglang.test.few_shot_gsm8k: Accuracy, Invalid, Latency");
    add_server_options(gsm, g->server);
    gsm->add_option("--num-shots", g->options.num_shots, "few-shot examples")
        ->capture_default_str();
    gsm->add_option("--num-questions", g->options.num_questions, "questions asked")
        ->capture_default_str();
    gsm->add_option("--parallel", g->options.parallel, "requests in flight")->capture_default_str();
    gsm->add_option("--max-new-tokens", g->options.max_new_tokens, "tokens per answer")
        ->capture_default_str();
    gsm->add_option("--data-path", g->data_path,
                    "GSM8K test.jsonl (default: the repository's copy)");
    gsm->add_option("--dump", g->dump, "write every output, prediction and label to this JSONL");
    gsm->add_flag("--disable-progress", g->disable_progress, "no progress counter");
    gsm->callback([g] { run_gsm8k(*g); });

    auto m = std::make_shared<MmluArgs>();
    m->options.parallel = 64;
    CLI::App* mmlu = eval->add_subcommand(
        "mmlu",
        "MMLU as SGLang's benchmark/mmlu/bench_sglang.py: per-subject and average accuracy");
    add_server_options(mmlu, m->server);
    mmlu->add_option("--nsub", m->options.nsub, "first N subjects in sorted order (57 in all)")
        ->capture_default_str();
    mmlu->add_option("--ntrain,-k", m->options.ntrain, "few-shot examples per subject")
        ->capture_default_str();
    mmlu->add_option("--parallel", m->options.parallel, "requests in flight")
        ->capture_default_str();
    mmlu->add_option("--data-dir,-d", m->data_dir,
                     "folder with dev/ and test/ CSVs (default: the repository's copy)");
    mmlu->add_flag("--disable-progress", m->disable_progress, "no progress counter");
    mmlu->callback([m] { run_mmlu(*m); });
}

}  // namespace dsserve::cli
