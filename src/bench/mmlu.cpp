#include "bench/mmlu.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <utility>

#include "bench/eval_client.h"
#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "tokenizer/unicode_classes.h"
#include "tokenizer/utf8.h"

namespace dsserve::bench {

namespace {

struct TokenCounts {
    const char* subject;
    std::array<int, 6> tokens;  // few-shot block with 0..5 dev examples
};

constexpr TokenCounts kTokenCounts[] = {
#include "bench/mmlu_token_counts.inc"
};

constexpr int kMaxFewShotTokens = 1536;

}  // namespace

std::vector<std::vector<std::string>> parse_csv(std::string_view text) {
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> row;
    std::string field;
    bool quoted = false;
    bool row_started = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (quoted) {
            if (c == '"') {
                if (i + 1 < text.size() && text[i + 1] == '"') {
                    field += '"';
                    ++i;
                } else {
                    quoted = false;
                }
            } else {
                field += c;
            }
            continue;
        }
        if (c == '"') {
            quoted = true;
            row_started = true;
        } else if (c == ',') {
            row.push_back(std::move(field));
            field.clear();
            row_started = true;
        } else if (c == '\n' || c == '\r') {
            if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
                ++i;
            }
            if (row_started || !field.empty()) {
                row.push_back(std::move(field));
                rows.push_back(std::move(row));
            }
            field.clear();
            row.clear();
            row_started = false;
        } else {
            field += c;
            row_started = true;
        }
    }
    DS_CHECK(!quoted, "CSV ends inside a quoted field");
    if (row_started || !field.empty()) {
        row.push_back(std::move(field));
        rows.push_back(std::move(row));
    }
    return rows;
}

// pandas.read_csv's default NA strings: SGLang's harness reads the CSVs with pandas, so a field
// such as "None" reaches its prompt as "nan" (the only case in the repository's copy: 10 choices,
// e.g. college_mathematics).
std::string mmlu_cell_as_pandas_prints(std::string field) {
    static constexpr std::string_view kNa[] = {"",         "#N/A", "#N/A N/A", "#NA",    "-1.#IND",
                                               "-1.#QNAN", "-NaN", "-nan",     "1.#IND", "1.#QNAN",
                                               "<NA>",     "N/A",  "NA",       "NULL",   "NaN",
                                               "None",     "n/a",  "nan",      "null"};
    for (std::string_view na : kNa) {
        if (field == na) {
            return "nan";
        }
    }
    return field;
}

std::vector<MmluQuestion> load_mmlu_csv(const std::filesystem::path& path) {
    const auto rows = parse_csv(read_file(path));
    DS_CHECK(!rows.empty() && rows[0].size() == 6 && rows[0][0] == "question", path.string(),
             ": expected the header question,choice0,...,answer");
    std::vector<MmluQuestion> out;
    for (std::size_t r = 1; r < rows.size(); ++r) {
        const auto& f = rows[r];
        DS_CHECK(f.size() == 6, path.string(), ": row ", r, " has ", f.size(), " fields");
        DS_CHECK(f[5].size() == 1 && f[5][0] >= '0' && f[5][0] <= '3', path.string(), ": row ", r,
                 ": answer must be 0..3, got '", f[5], "'");
        out.push_back({mmlu_cell_as_pandas_prints(f[0]),
                       {mmlu_cell_as_pandas_prints(f[1]), mmlu_cell_as_pandas_prints(f[2]),
                        mmlu_cell_as_pandas_prints(f[3]), mmlu_cell_as_pandas_prints(f[4])},
                       static_cast<char>('A' + (f[5][0] - '0'))});
    }
    return out;
}

std::vector<std::string> mmlu_subjects(const std::filesystem::path& dir) {
    constexpr std::string_view kSuffix = "_test.csv";
    std::vector<std::string> subjects;
    for (const auto& entry : std::filesystem::directory_iterator(dir / "test")) {
        const std::string name = entry.path().filename().string();
        if (name.size() > kSuffix.size() &&
            name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0) {
            subjects.push_back(name.substr(0, name.size() - kSuffix.size()));
        }
    }
    std::sort(subjects.begin(), subjects.end());
    DS_CHECK(!subjects.empty(), "no *_test.csv files in ", (dir / "test").string());
    return subjects;
}

std::string mmlu_header(std::string_view subject) {
    std::string words;
    std::size_t begin = 0;
    while (true) {
        const std::size_t end = subject.find('_', begin);
        words += " ";
        words += subject.substr(begin, end - begin);
        if (end == std::string_view::npos) {
            break;
        }
        begin = end + 1;
    }
    return str_cat("The following are multiple choice questions (with answers) about", words,
                   ".\n\n");
}

std::string mmlu_example(const MmluQuestion& q, bool include_answer) {
    std::string out = q.question;
    for (int j = 0; j < 4; ++j) {
        out += str_cat("\n", static_cast<char>('A' + j), ". ", q.choices[j]);
    }
    out += "\nAnswer:";
    if (include_answer) {
        out += str_cat(" ", q.answer, "\n\n");
    }
    return out;
}

int mmlu_num_shots(std::string_view subject, int ntrain) {
    for (const TokenCounts& t : kTokenCounts) {
        if (subject == t.subject) {
            int k = std::min<int>(ntrain, static_cast<int>(t.tokens.size()) - 1);
            while (k > 0 && t.tokens[k] > kMaxFewShotTokens) {
                --k;
            }
            return k;
        }
    }
    return ntrain;
}

namespace {

// Python's str.isspace() (Unicode 14, as in Python 3.11), which str.strip() removes: the ASCII
// controls and separators, NEL, no-break and other Unicode spaces, line and paragraph separators.
bool is_python_space(char32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

}  // namespace

std::string mmlu_prediction(std::string_view output) {
    // Python sees code points; a server's text is valid UTF-8, and anything else is read as
    // Python's decoder with errors="replace" would read it.
    const std::string text = tokenizer::to_utf8_lossy(output);
    for (std::size_t pos = 0; pos < text.size();) {
        std::size_t length = 0;
        const char32_t c = tokenizer::decode_at(text, pos, length);
        if (!is_python_space(c)) {
            return text.substr(pos, length);  // str[0]: one code point, all its bytes
        }
        pos += length;
    }
    return {};
}

MmluResult run_mmlu(const MmluOptions& options) {
    DS_CHECK(options.ntrain >= 0, "--ntrain must be >= 0");
    DS_CHECK(options.nsub >= 1, "--nsub must be at least 1");
    auto subjects = mmlu_subjects(options.data_dir);
    subjects.resize(std::min<std::size_t>(subjects.size(), options.nsub));
    std::vector<std::string> prompts;
    std::vector<char> labels;
    MmluResult result;
    for (const std::string& subject : subjects) {
        auto dev = load_mmlu_csv(options.data_dir / "dev" / (subject + "_dev.csv"));
        const auto test = load_mmlu_csv(options.data_dir / "test" / (subject + "_test.csv"));
        const int k =
            std::min<int>(mmlu_num_shots(subject, options.ntrain), static_cast<int>(dev.size()));
        std::string examples = mmlu_header(subject);
        for (int i = 0; i < k; ++i) {
            examples += mmlu_example(dev[i], true);
        }
        for (const MmluQuestion& q : test) {
            prompts.push_back(examples + mmlu_example(q, false));
            labels.push_back(q.answer);
        }
        result.subjects.push_back({subject, static_cast<int>(test.size()), 0.0});
    }
    check_server(options.url);
    const Json sampling = {{"max_new_tokens", 1}, {"temperature", 0.0}};
    const auto t0 = std::chrono::steady_clock::now();
    const auto outputs = generate_all(options.url, prompts, sampling, options.parallel,
                                      options.show_progress, options.request_timeout);
    result.latency_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::size_t at = 0, total_correct = 0;
    for (MmluSubjectResult& s : result.subjects) {
        int correct = 0;
        for (int i = 0; i < s.num_questions; ++i, ++at) {
            result.failed_requests += outputs[at].success ? 0 : 1;
            correct += mmlu_prediction(outputs[at].text) == std::string(1, labels[at]) ? 1 : 0;
        }
        s.accuracy = s.num_questions > 0 ? static_cast<double>(correct) / s.num_questions : 0.0;
        total_correct += static_cast<std::size_t>(correct);
    }
    result.average_accuracy =
        prompts.empty() ? 0.0 : static_cast<double>(total_correct) / prompts.size();
    return result;
}

std::string format_mmlu(const MmluResult& r) {
    std::string out;
    char buf[512];
    for (const MmluSubjectResult& s : r.subjects) {
        std::snprintf(buf, sizeof buf, "subject: %s, #q:%d, acc: %.3f\n", s.subject.c_str(),
                      s.num_questions, s.accuracy);
        out += buf;
    }
    std::snprintf(buf, sizeof buf, "Total latency: %.3f\nAverage accuracy: %.3f\n", r.latency_s,
                  r.average_accuracy);
    out += buf;
    if (r.failed_requests > 0) {
        out += str_cat("Failed requests: ", r.failed_requests, " (scored as wrong)\n");
    }
    return out;
}

}  // namespace dsserve::bench
