#include "bench/mmlu.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "fake_server.h"

namespace dsserve::bench {
namespace {

const std::string kMmlu = DSSERVE_DATA_DIR "/datasets/mmlu";

TEST(Csv, QuotesNewlinesAndDoubledQuotes) {
    const auto rows = parse_csv("a,\"b,c\",\"say \"\"hi\"\"\"\r\n\"multi\nline\",,x\nlast");
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_EQ(rows[0], (std::vector<std::string>{"a", "b,c", "say \"hi\""}));
    EXPECT_EQ(rows[1], (std::vector<std::string>{"multi\nline", "", "x"}));
    EXPECT_EQ(rows[2], (std::vector<std::string>{"last"}));
    EXPECT_THROW(parse_csv("\"open"), Error);
}

TEST(Mmlu, RepositoryCopyAndAnswerMapping) {
    const auto subjects = mmlu_subjects(kMmlu);
    ASSERT_EQ(subjects.size(), 57u);
    EXPECT_EQ(subjects[0], "abstract_algebra");
    std::size_t total = 0;
    for (const auto& s : subjects) {
        total += load_mmlu_csv(kMmlu + "/test/" + s + "_test.csv").size();
        EXPECT_EQ(load_mmlu_csv(kMmlu + "/dev/" + s + "_dev.csv").size(), 5u);
    }
    EXPECT_EQ(total, 14042u);
    // abstract_algebra dev row 0 has answer index 1 in the copy: letter B.
    const auto dev = load_mmlu_csv(kMmlu + "/dev/abstract_algebra_dev.csv");
    const auto raw = parse_csv(read_file(kMmlu + "/dev/abstract_algebra_dev.csv"));
    EXPECT_EQ(dev[0].answer, static_cast<char>('A' + (raw[1][5][0] - '0')));
}

TEST(Mmlu, PromptLayout) {
    EXPECT_EQ(mmlu_header("high_school_us_history"),
              "The following are multiple choice questions (with answers) about high school us "
              "history.\n\n");
    const MmluQuestion q{"What is 2+2?", {"3", "4", "5", "6"}, 'B'};
    EXPECT_EQ(mmlu_example(q, true), "What is 2+2?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer: B\n\n");
    EXPECT_EQ(mmlu_example(q, false), "What is 2+2?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer:");
    // Long passages: fewer shots to stay within 1536 gpt-3.5-turbo tokens.
    EXPECT_LT(mmlu_num_shots("high_school_european_history", 5), 5);
    EXPECT_EQ(mmlu_num_shots("abstract_algebra", 5), 5);
    EXPECT_EQ(mmlu_num_shots("abstract_algebra", 2), 2);
}

TEST(Mmlu, Prediction) {
    EXPECT_EQ(mmlu_prediction(" B"), "B");
    EXPECT_EQ(mmlu_prediction("\n  C."), "C");
    EXPECT_EQ(mmlu_prediction("  "), "");
    EXPECT_EQ(mmlu_prediction("é"), "é");
    // Python's str.strip() removes Unicode whitespace too (str.isspace, checked with CPython).
    EXPECT_EQ(mmlu_prediction("\u3000A"), "A");
    EXPECT_EQ(mmlu_prediction("\u00A0\u2028\x1c D"), "D");
    EXPECT_EQ(mmlu_prediction("\u200B A"), "\u200B");  // zero width space: not whitespace
    EXPECT_EQ(mmlu_prediction("\u2003"), "");
}

// SGLang reads the CSVs with pandas: its NA strings reach the prompt as "nan".
TEST(Mmlu, FieldsAsPandasPrintsThem) {
    for (const char* na : {"None", "NA", "N/A", "null", "NaN", ""}) {
        EXPECT_EQ(mmlu_cell_as_pandas_prints(na), "nan") << na;
    }
    for (const char* kept : {"none", "None of these", " None", "0", "1.5", "nan."}) {
        EXPECT_EQ(mmlu_cell_as_pandas_prints(kept), kept);
    }
    // college_mathematics test row 8 has the choice A "None" (found with pandas 3.1).
    const auto q = load_mmlu_csv(kMmlu + "/test/college_mathematics_test.csv");
    const auto raw = parse_csv(read_file(kMmlu + "/test/college_mathematics_test.csv"));
    ASSERT_EQ(raw[9][1], "None");
    EXPECT_EQ(q[8].choices[0], "nan");
    EXPECT_EQ(q[8].choices[1], raw[9][2]);
}

// Forced answers: right for every question of the first subject, wrong for the second.
TEST(Mmlu, ScoresForcedAnswers) {
    const auto subjects = mmlu_subjects(kMmlu);
    Json answers = Json::object();
    for (int s = 0; s < 2; ++s) {
        for (const auto& q : load_mmlu_csv(kMmlu + "/test/" + subjects[s] + "_test.csv")) {
            const char wrong = q.answer == 'A' ? 'B' : 'A';
            answers[mmlu_example(q, false)] = std::string(" ") + (s == 0 ? q.answer : wrong);
        }
    }
    const std::string file =
        std::filesystem::temp_directory_path() / ("mmlu_answers_" + std::to_string(getpid()));
    write_file(file, answers.dump());
    testing::FakeServer server({"--answers", file, "--token-delay", "0"});
    MmluOptions options;
    options.url = server.url();
    options.data_dir = kMmlu;
    options.nsub = 2;
    options.show_progress = false;
    const MmluResult r = run_mmlu(options);
    ASSERT_EQ(r.subjects.size(), 2u);
    EXPECT_EQ(r.subjects[0].subject, "abstract_algebra");
    EXPECT_DOUBLE_EQ(r.subjects[0].accuracy, 1.0);
    EXPECT_DOUBLE_EQ(r.subjects[1].accuracy, 0.0);
    const double n0 = r.subjects[0].num_questions, n1 = r.subjects[1].num_questions;
    EXPECT_DOUBLE_EQ(r.average_accuracy, n0 / (n0 + n1));
    const std::string text = format_mmlu(r);
    EXPECT_NE(text.find("subject: abstract_algebra, #q:100, acc: 1.000\n"), std::string::npos)
        << text;
    EXPECT_NE(text.find("Average accuracy: "), std::string::npos);
    std::filesystem::remove(file);
}

}  // namespace
}  // namespace dsserve::bench
