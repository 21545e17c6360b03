#include "bench/gsm8k.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/file.h"
#include "core/json.h"
#include "fake_server.h"

namespace dsserve::bench {
namespace {

const std::string kTest = DSSERVE_DATA_DIR "/datasets/gsm8k/test.jsonl";

TEST(Gsm8kAnswerValue, TrickyOutputs) {
    EXPECT_EQ(gsm8k_answer_value("The answer is 1,234."), "1234");         // comma in a number
    EXPECT_EQ(gsm8k_answer_value("He owes -5 dollars"), "5");              // sign ignored
    EXPECT_EQ(gsm8k_answer_value("-3.5"), "5");                            // last digit run
    EXPECT_EQ(gsm8k_answer_value("3 apples and 4 pears: 7 fruits"), "7");  // several numbers
    EXPECT_EQ(gsm8k_answer_value("no number here"), std::nullopt);         // INVALID
    EXPECT_EQ(gsm8k_answer_value(""), std::nullopt);
    EXPECT_EQ(gsm8k_answer_value("#### 0"), "0");
    // The last run goes through ast.literal_eval (checked with CPython 3.11): a leading zero is
    // a SyntaxError, so INVALID, except for zeros alone.
    EXPECT_EQ(gsm8k_answer_value("#### 007"), std::nullopt);
    EXPECT_EQ(gsm8k_answer_value("18 then 0018"), std::nullopt);
    EXPECT_EQ(gsm8k_answer_value("#### 000"), "0");
    // Python's \d is any Unicode decimal digit: such a run is the last number, and INVALID.
    EXPECT_EQ(gsm8k_answer_value("18 \uFF12"), std::nullopt);        // fullwidth 2
    EXPECT_EQ(gsm8k_answer_value("18 \u06F1\u06F3"), std::nullopt);  // extended Arabic-Indic 13
    EXPECT_EQ(gsm8k_answer_value("\u0661 then 18"), "18");           // Arabic-Indic 1, then 18
    EXPECT_EQ(gsm8k_answer_value("1\uFF12"), std::nullopt);          // one mixed run
    EXPECT_EQ(gsm8k_answer_value("x\u00B2 and 18\u00B2"), "18");     // superscripts are no Nd
    EXPECT_EQ(gsm8k_answer_value("18 \xFF\xFE"), "18");              // bad UTF-8 never matches
    EXPECT_EQ(gsm8k_answer_value("1,2,3"), "123");                   // commas deleted first
    EXPECT_EQ(gsm8k_answer_value("x 123456789012345678901234567890"),
              "123456789012345678901234567890");  // longer than any integer type
    EXPECT_EQ(gsm8k_answer_value("costs $18.\nQuestion"), "18");
    // Several numbers, some with thousands commas: the last one, commas gone.
    EXPECT_EQ(gsm8k_answer_value("from 1,000 to 12,500 people, so 11,500"), "11500");
    EXPECT_EQ(gsm8k_answer_value("It fell to -18."), gsm8k_answer_value("#### 18"));  // as SGLang
    EXPECT_EQ(gsm8k_answer_value("-"), std::nullopt);  // a sign alone is no number
}

TEST(Gsm8k, PromptLayoutOfFewShotGsm8k) {
    const auto items = load_gsm8k(kTest);
    ASSERT_EQ(items.size(), 1319u);
    const std::string shots = gsm8k_few_shot(items, 2);
    EXPECT_EQ(shots, "Question: " + items[0].question + "\nAnswer: " + items[0].answer +
                         "\n\nQuestion: " + items[1].question + "\nAnswer: " + items[1].answer +
                         "\n\n");
    EXPECT_EQ(gsm8k_question(items[5]), "Question: " + items[5].question + "\nAnswer:");
    for (const auto& item : items) {
        EXPECT_TRUE(gsm8k_answer_value(item.answer).has_value());
    }
    EXPECT_EQ(gsm8k_answer_value(items[0].answer), "18");
}

// A server that answers every question right, wrong, unparsably or not at all (HTTP 500),
// according to a table: the harness must score exactly what the table says.
TEST(Gsm8k, ScoresForcedAnswers) {
    const auto items = load_gsm8k(kTest);
    Json answers = Json::object();
    constexpr int kQuestions = 20;
    int right = 0, wrong = 0, unparsable = 0, failed = 0;
    for (int i = 0; i < kQuestions; ++i) {
        const std::string label = *gsm8k_answer_value(items[i].answer);
        std::string reply;
        switch (i % 4) {
            case 0:
                reply = " She makes 2 and then 9 so " + label + " in the end.\n\n";
                ++right;
                break;
            case 1:
                reply = " The total is " + label + "1.";
                ++wrong;
                break;
            case 2:
                reply = " I do not know.";
                ++unparsable;
                break;
            case 3:
                reply = " FAIL500";  // not a reply: the prompt below carries the marker
                ++failed;
                break;
        }
        answers[gsm8k_question(items[i])] = reply;
    }
    const std::string file =
        std::filesystem::temp_directory_path() / ("gsm8k_answers_" + std::to_string(getpid()));
    write_file(file, answers.dump());
    testing::FakeServer server({"--answers", file});

    // The 4th kind must fail at the server: put the marker into those questions' prompts by
    // giving them a data file whose questions contain it.
    std::string data;
    for (int i = 0; i < kQuestions; ++i) {
        Gsm8kItem item = items[i];
        if (i % 4 == 3) {
            item.question += " FAIL500";
        }
        data += Json({{"question", item.question}, {"answer", item.answer}}).dump() + "\n";
    }
    const std::string data_file = file + ".jsonl";
    write_file(data_file, data);

    Gsm8kOptions options;
    options.url = server.url();
    options.data = data_file;
    options.num_shots = 0;  // shots would contain the FAIL500 marker of question 3
    options.num_questions = kQuestions;
    options.parallel = 4;
    options.show_progress = false;
    const Gsm8kResult r = run_gsm8k(options);
    EXPECT_DOUBLE_EQ(r.accuracy, static_cast<double>(right) / kQuestions);
    EXPECT_DOUBLE_EQ(r.invalid, static_cast<double>(unparsable + failed) / kQuestions);
    EXPECT_EQ(r.failed_requests, failed);
    EXPECT_GT(r.output_throughput, 0.0);
    const std::string text = format_gsm8k(r);
    EXPECT_NE(text.find("Accuracy: 0.250\nInvalid: 0.500\nLatency: "), std::string::npos) << text;
    EXPECT_NE(text.find(" token/s\n"), std::string::npos);
    std::filesystem::remove(file);
    std::filesystem::remove(data_file);
}

TEST(Gsm8k, AllRightScoresOne) {
    const auto items = load_gsm8k(kTest);
    Json answers = Json::object();
    for (int i = 0; i < 8; ++i) {
        answers[gsm8k_question(items[i])] = " " + items[i].answer;  // the reference itself
    }
    const std::string file =
        std::filesystem::temp_directory_path() / ("gsm8k_right_" + std::to_string(getpid()));
    write_file(file, answers.dump());
    testing::FakeServer server({"--answers", file});
    Gsm8kOptions options;
    options.url = server.url();
    options.data = kTest;
    options.num_questions = 8;
    options.show_progress = false;
    const Gsm8kResult r = run_gsm8k(options);
    EXPECT_DOUBLE_EQ(r.accuracy, 1.0);
    EXPECT_DOUBLE_EQ(r.invalid, 0.0);
    std::filesystem::remove(file);
}

}  // namespace
}  // namespace dsserve::bench
