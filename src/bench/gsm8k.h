// `dsserve eval gsm8k`: SGLang's few_shot_gsm8k (spec §7.1): the same few-shot prompt built from
// the first k test questions, the same stop strings, the same answer extraction and printout.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/http_client.h"

namespace dsserve::bench {

struct Gsm8kItem {
    std::string question;
    std::string answer;  // reference reasoning ending in "#### <number>"
};

std::vector<Gsm8kItem> load_gsm8k(const std::filesystem::path& jsonl);

// SGLang's get_answer_value: delete commas, take the last maximal run of digits (Python's \d:
// any Unicode decimal digit) and read it with ast.literal_eval. Signs and decimal points are not
// part of the number ("-3.5" gives 5). nullopt is SGLang's INVALID: no digit at all, or a last
// run that is no Python integer literal (a non-ASCII digit in it, or a leading zero as in "007").
// The digits come back as a string, so numbers of any length compare exactly.
std::optional<std::string> gsm8k_answer_value(std::string_view text);

// "Question: q\nAnswer: a\n\n" for the first num_shots items.
std::string gsm8k_few_shot(const std::vector<Gsm8kItem>& items, int num_shots);
// "Question: q\nAnswer:" (no trailing space).
std::string gsm8k_question(const Gsm8kItem& item);

struct Gsm8kOptions {
    Url url;
    std::filesystem::path data;  // test.jsonl
    int num_shots = 5;
    int num_questions = 200;
    int parallel = 128;
    int max_new_tokens = 512;
    bool show_progress = true;
    std::chrono::seconds request_timeout{600};  // see generate_all
};

struct Gsm8kResult {
    double accuracy = 0;
    double invalid = 0;
    double latency_s = 0;
    double output_throughput = 0;  // completion tokens / latency
    int failed_requests = 0;       // counted as invalid answers, as an exception would be
    std::vector<std::string> outputs;
    std::vector<std::optional<std::string>> preds, labels;
};

Gsm8kResult run_gsm8k(const Gsm8kOptions& options);
// Accuracy:, Invalid:, Latency:, Output throughput: lines (and failed requests when any).
std::string format_gsm8k(const Gsm8kResult& result);

}  // namespace dsserve::bench
