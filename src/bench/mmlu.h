// `dsserve eval mmlu`: SGLang's benchmark/mmlu/bench_sglang.py (spec §7.2): per-subject few-shot
// prompts from the dev split (examples dropped while the block exceeds 1536 gpt-3.5-turbo
// tokens), one token generated per test question, the first character of the stripped output
// compared with the answer letter.
#pragma once

#include <array>
#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "bench/http_client.h"

namespace dsserve::bench {

struct MmluQuestion {
    std::string question;
    std::array<std::string, 4> choices;
    char answer = 'A';  // 'A'..'D'
};

// RFC 4180 CSV (quoted fields, doubled quotes, newlines inside quotes) into rows of fields.
std::vector<std::vector<std::string>> parse_csv(std::string_view text);

// The repository's copy: a header line, then question, 4 choices, answer index 0..3. Text
// fields come back as SGLang's harness, which reads the CSVs with pandas, puts them in its
// prompts: see mmlu_cell_as_pandas_prints.
std::vector<MmluQuestion> load_mmlu_csv(const std::filesystem::path& path);

// A CSV field as str() of what pandas.read_csv makes of it: pandas' default NA strings ("None",
// "NA", "", ...) become "nan"; anything else is unchanged. (pandas also gives an all-numeric
// column a numeric type, which could reformat "1" as "1.0"; no column of the repository's copy
// changes that way, checked with pandas 3.)
std::string mmlu_cell_as_pandas_prints(std::string field);

// Subjects with a {subject}_test.csv in dir/test, in sorted order.
std::vector<std::string> mmlu_subjects(const std::filesystem::path& dir);

// "The following are multiple choice questions (with answers) about abstract algebra.\n\n"
std::string mmlu_header(std::string_view subject);
// question, "\nA. ..." for each choice, "\nAnswer:", and " X\n\n" with the answer.
std::string mmlu_example(const MmluQuestion& q, bool include_answer);
// How many of the `ntrain` dev examples SGLang keeps for the subject (token counts looked up in
// mmlu_token_counts.inc; a subject not there keeps ntrain).
int mmlu_num_shots(std::string_view subject, int ntrain);

// SGLang's prediction: output.strip()[0] in Python (Unicode whitespace stripped, one code
// point), or "" when nothing is left.
std::string mmlu_prediction(std::string_view output);

struct MmluOptions {
    Url url;
    std::filesystem::path data_dir;  // holds dev/ and test/
    int ntrain = 5;
    int nsub = 60;
    int parallel = 64;
    bool show_progress = true;
    std::chrono::seconds request_timeout{600};  // see generate_all
};

struct MmluSubjectResult {
    std::string subject;
    int num_questions = 0;
    double accuracy = 0;
};

struct MmluResult {
    std::vector<MmluSubjectResult> subjects;
    double latency_s = 0;
    double average_accuracy = 0;  // over questions
    int failed_requests = 0;
};

MmluResult run_mmlu(const MmluOptions& options);
std::string format_mmlu(const MmluResult& result);

}  // namespace dsserve::bench
