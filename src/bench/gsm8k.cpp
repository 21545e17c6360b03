#include "bench/gsm8k.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>

#include "bench/eval_client.h"
#include "core/error.h"
#include "core/file.h"
#include "core/json.h"

namespace dsserve::bench {

std::vector<Gsm8kItem> load_gsm8k(const std::filesystem::path& jsonl) {
    std::istringstream in(read_file(jsonl));
    std::vector<Gsm8kItem> items;
    std::string line;
    for (int lineno = 1; std::getline(in, line); ++lineno) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) {
            continue;
        }
        const Json j = Json::parse(line, nullptr, false);
        DS_CHECK(j.is_object() && j.contains("question") && j["question"].is_string() &&
                     j.contains("answer") && j["answer"].is_string(),
                 jsonl.string(), ":", lineno, ": expected {\"question\", \"answer\"}");
        items.push_back({j["question"].get<std::string>(), j["answer"].get<std::string>()});
    }
    return items;
}

namespace {

// Python's `\d+` on a str: runs of Unicode decimal digits (category Nd), not only ASCII ones.
// PCRE2 with UCP has the same class; Debian 12's PCRE2 and Python 3.11 both use Unicode 14.
// Invalid UTF-8 never matches (it cannot reach Python's re at all).
class DigitRuns {
public:
    DigitRuns() {
        int error = 0;
        PCRE2_SIZE offset = 0;
        code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>("\\d+"), PCRE2_ZERO_TERMINATED,
                              PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error, &offset,
                              nullptr);
        DS_ASSERT(code_ != nullptr, "cannot compile \\d+: PCRE2 error ", error);
    }
    ~DigitRuns() { pcre2_code_free(code_); }
    DigitRuns(const DigitRuns&) = delete;
    DigitRuns& operator=(const DigitRuns&) = delete;

    // The last run in text, or nullopt when there is none.
    std::optional<std::string_view> last(std::string_view text) const {
        pcre2_match_data* data = pcre2_match_data_create_from_pattern(code_, nullptr);
        DS_ASSERT(data != nullptr, "out of memory");
        std::optional<std::string_view> found;
        PCRE2_SIZE start = 0;
        while (start <= text.size() && pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(text.data()),
                                                   text.size(), start, 0, data, nullptr) > 0) {
            const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data);
            found = text.substr(ovector[0], ovector[1] - ovector[0]);
            start = ovector[1];  // a run is never empty, so this moves on
        }
        pcre2_match_data_free(data);
        return found;
    }

private:
    pcre2_code* code_ = nullptr;
};

}  // namespace

std::optional<std::string> gsm8k_answer_value(std::string_view text) {
    std::string no_commas;
    no_commas.reserve(text.size());
    for (char c : text) {
        if (c != ',') {
            no_commas += c;  // commas are deleted before matching: "1,000" is one number
        }
    }
    static const DigitRuns digit_runs;
    const std::optional<std::string_view> run = digit_runs.last(no_commas);
    if (!run) {
        return std::nullopt;
    }
    // SGLang evaluates the run with ast.literal_eval, which takes only a Python integer literal:
    // ASCII digits ("２" is a SyntaxError) without a leading zero unless all are zeros ("007"
    // is a SyntaxError, "00" is 0). Anything else is its INVALID.
    const bool ascii =
        std::all_of(run->begin(), run->end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!ascii) {
        return std::nullopt;
    }
    const std::size_t nonzero = run->find_first_not_of('0');
    if (nonzero == std::string_view::npos) {
        return "0";
    }
    if (nonzero > 0) {
        return std::nullopt;
    }
    return std::string(*run);
}

std::string gsm8k_few_shot(const std::vector<Gsm8kItem>& items, int num_shots) {
    DS_CHECK(num_shots >= 0 && static_cast<std::size_t>(num_shots) <= items.size(),
             "--num-shots must be in 0..", items.size());
    std::string out;
    for (int i = 0; i < num_shots; ++i) {
        out += str_cat("Question: ", items[i].question, "\nAnswer: ", items[i].answer, "\n\n");
    }
    return out;
}

std::string gsm8k_question(const Gsm8kItem& item) {
    return str_cat("Question: ", item.question, "\nAnswer:");
}

Gsm8kResult run_gsm8k(const Gsm8kOptions& options) {
    const auto items = load_gsm8k(options.data);
    DS_CHECK(options.num_questions >= 1, "--num-questions must be at least 1");
    const std::size_t n = std::min<std::size_t>(options.num_questions, items.size());
    const std::string few_shot = gsm8k_few_shot(items, options.num_shots);
    std::vector<std::string> prompts;
    Gsm8kResult r;
    for (std::size_t i = 0; i < n; ++i) {
        prompts.push_back(few_shot + gsm8k_question(items[i]));
        r.labels.push_back(gsm8k_answer_value(items[i].answer));
        DS_CHECK(r.labels.back().has_value(), "GSM8K item ", i, " has no numeric answer");
    }
    check_server(options.url);
    const Json sampling = {{"max_new_tokens", options.max_new_tokens},
                           {"temperature", 0.0},
                           {"stop", {"Question", "Assistant:", "<|separator|>"}},
                           {"skip_special_tokens", true}};
    const auto t0 = std::chrono::steady_clock::now();
    const auto results = generate_all(options.url, prompts, sampling, options.parallel,
                                      options.show_progress, options.request_timeout);
    r.latency_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::int64_t tokens = 0;
    int correct = 0, invalid = 0;
    for (std::size_t i = 0; i < n; ++i) {
        r.failed_requests += results[i].success ? 0 : 1;
        tokens += results[i].completion_tokens;
        r.outputs.push_back(results[i].text);
        r.preds.push_back(gsm8k_answer_value(results[i].text));
        correct += r.preds.back() == r.labels[i] ? 1 : 0;
        invalid += r.preds.back().has_value() ? 0 : 1;
    }
    r.accuracy = static_cast<double>(correct) / static_cast<double>(n);
    r.invalid = static_cast<double>(invalid) / static_cast<double>(n);
    r.output_throughput = r.latency_s > 0 ? static_cast<double>(tokens) / r.latency_s : 0.0;
    return r;
}

std::string format_gsm8k(const Gsm8kResult& r) {
    char buf[256];
    std::snprintf(
        buf, sizeof buf,
        "Accuracy: %.3f\nInvalid: %.3f\nLatency: %.3f s\nOutput throughput: %.3f token/s\n",
        r.accuracy, r.invalid, r.latency_s, r.output_throughput);
    std::string out = buf;
    if (r.failed_requests > 0) {
        out += str_cat("Failed requests: ", r.failed_requests, " (scored as invalid)\n");
    }
    return out;
}

}  // namespace dsserve::bench
