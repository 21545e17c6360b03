// Runs the real `dsserve parse` binary and checks its JSON.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "core/file.h"
#include "core/json.h"

namespace dsserve {
namespace {

namespace fs = std::filesystem;

struct CliResult {
    int status = 0;
    std::string output;  // stdout
    std::string errors;  // stderr
};

class ParseCliTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("dsserve_parse_cli_" +
                std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::string file(const std::string& name, const std::string& content) {
        fs::path path = dir_ / name;
        write_file(path, content);
        return path.string();
    }

    CliResult run_parse(const std::string& args) {
        fs::path errors = dir_ / "stderr.txt";
        std::string command =
            std::string(DSSERVE_BINARY_DIR) + "/dsserve parse " + args + " 2>" + errors.string();
        FILE* pipe = popen(command.c_str(), "r");
        EXPECT_NE(pipe, nullptr);
        CliResult result;
        char buf[4096];
        size_t n = 0;
        while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) {
            result.output.append(buf, n);
        }
        result.status = pclose(pipe);
        result.errors = read_file(errors);
        return result;
    }

    fs::path dir_;
};

const char* kCompletion =
    "I should call the weather tool.</think>Checking.\n\n<｜DSML｜function_calls>\n"
    "<｜DSML｜invoke name=\"get_weather\">\n"
    "<｜DSML｜parameter name=\"location\" string=\"true\">杭州</｜DSML｜parameter>\n"
    "<｜DSML｜parameter name=\"days\" string=\"false\">2</｜DSML｜parameter>\n"
    "</｜DSML｜invoke>\n<｜DSML｜invoke name=\"rm_rf\">\n</｜DSML｜invoke>\n"
    "</｜DSML｜function_calls>";

Json without_ids(Json message) {
    for (Json& call : message["tool_calls"]) {
        EXPECT_EQ(call["id"].get<std::string>().size(), 29u);
        call.erase("id");
    }
    return message;
}

TEST_F(ParseCliTest, NonStreamingAndEveryChunkSizeAgree) {
    std::string completion = file("completion.txt", kCompletion);
    std::string tools =
        file("tools.json", R"([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object"}}}])");
    std::string common =
        "--reasoning-parser deepseek-v3 --tool-call-parser deepseekv32 --thinking "
        "--tools " +
        tools + " --file " + completion;
    CliResult whole = run_parse(common);
    ASSERT_EQ(whole.status, 0) << whole.output;
    Json message = Json::parse(whole.output);
    EXPECT_EQ(message["content"], "Checking.");
    EXPECT_EQ(message["reasoning_content"], "I should call the weather tool.");
    ASSERT_EQ(message["tool_calls"].size(), 1u);  // rm_rf is not in --tools
    EXPECT_NE(whole.errors.find("unknown function 'rm_rf'"), std::string::npos) << whole.errors;
    EXPECT_EQ(message["tool_calls"][0]["function"]["name"], "get_weather");
    EXPECT_EQ(message["tool_calls"][0]["function"]["arguments"],
              R"({"location": "杭州", "days": 2})");
    for (int chunk : {1, 2, 3, 7, 64}) {
        CliResult streamed = run_parse(common + " --chunk " + std::to_string(chunk));
        ASSERT_EQ(streamed.status, 0) << streamed.output;
        EXPECT_EQ(without_ids(Json::parse(streamed.output)), without_ids(message)) << chunk;
    }
}

TEST_F(ParseCliTest, ThinkingOffAndNoParsers) {
    std::string completion = file("completion.txt", kCompletion);
    CliResult plain = run_parse("--file " + completion);
    ASSERT_EQ(plain.status, 0) << plain.output;
    Json message = Json::parse(plain.output);
    EXPECT_EQ(message["content"], kCompletion);
    EXPECT_TRUE(message["reasoning_content"].is_null());
    EXPECT_TRUE(message["tool_calls"].is_null());

    CliResult chat = run_parse(
        "--reasoning-parser deepseek-v3 --tool-call-parser deepseekv32 --file " + completion);
    ASSERT_EQ(chat.status, 0) << chat.output;
    message = Json::parse(chat.output);
    EXPECT_TRUE(message["reasoning_content"].is_null());
    EXPECT_EQ(message["content"], "I should call the weather tool.</think>Checking.");
    EXPECT_EQ(message["tool_calls"].size(), 2u);
}

TEST_F(ParseCliTest, V31Format) {
    std::string completion =
        file("v31.txt",
             "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"location\":"
             "\"Tokyo\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>");
    CliResult result = run_parse("--tool-call-parser deepseekv31 --chunk 5 --file " + completion);
    ASSERT_EQ(result.status, 0) << result.output;
    Json message = Json::parse(result.output);
    EXPECT_EQ(message["content"], "");
    EXPECT_EQ(message["tool_calls"][0]["function"]["arguments"], R"({"location": "Tokyo"})");
}

TEST_F(ParseCliTest, ErrorsAreReported) {
    std::string completion = file("completion.txt", "x");
    CliResult bad = run_parse("--tool-call-parser qwen --file " + completion);
    EXPECT_NE(bad.status, 0);
    EXPECT_NE(
        bad.errors.find("dsserve: error: unknown tool-call parser 'qwen' (valid: deepseekv32, "
                        "deepseekv31, none)"),
        std::string::npos)
        << bad.errors;
    CliResult speciale = run_parse(
        "--model deepseek-ai/DeepSeek-V3.2-Speciale --tool-call-parser deepseekv32 "
        "--file " +
        completion);
    EXPECT_NE(speciale.status, 0);
    EXPECT_NE(speciale.errors.find("does not support tool calls"), std::string::npos)
        << speciale.errors;
}

}  // namespace
}  // namespace dsserve
