// Runs `dsserve chat-encode` end to end on the official V3.2 vector and on Jinja templates.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>

#include "chat/test_paths.h"
#include "core/file.h"
#include "core/json.h"

namespace dsserve::chat {
namespace {

namespace fs = std::filesystem;

struct RunResult {
    int exit_code = -1;
    std::string output;  // stdout, or stdout + stderr when asked
};

RunResult run_dsserve(const std::string& args, bool with_stderr = false) {
    const std::string command = std::string(DSSERVE_BINARY_DIR) + "/dsserve chat-encode " + args +
                                (with_stderr ? " 2>&1" : "");
    RunResult result;
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) {
        return result;
    }
    std::array<char, 4096> buf;
    size_t n = 0;
    while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) {
        result.output.append(buf.data(), n);
    }
    const int status = pclose(pipe);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

class ChatEncodeCli : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("dsserve_chat_cli_" + std::to_string(::getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::string write(const std::string& name, const std::string& text) {
        const fs::path path = dir_ / name;
        write_file(path, text);
        return path.string();
    }

    fs::path dir_;
};

std::string strip(const std::string& text) {
    const auto first = text.find_first_not_of(" \n\r\t");
    const auto last = text.find_last_not_of(" \n\r\t");
    return text.substr(first, last - first + 1);
}

TEST_F(ChatEncodeCli, OfficialVectorThroughTheV32Encoder) {
    const std::string vectors = testing::data_dir() + "/encoding/deepseek-v3.2/";
    Json input = Json::parse(read_file(vectors + "test_input.json"));
    const std::string gold = strip(read_file(vectors + "test_output.txt"));
    // A request that ends with the assistant turn would turn it into a user message (SGLang), so
    // the request stops before it; its prompt is the official output up to that turn.
    const Json last = input["messages"].back();
    input["messages"].erase(input["messages"].size() - 1);
    input["chat_template_kwargs"] = {{"thinking", true}};
    const size_t cut = gold.rfind(last["reasoning_content"].get<std::string>());
    ASSERT_NE(cut, std::string::npos);
    const std::string expected = gold.substr(0, cut);
    ASSERT_TRUE(expected.ends_with("</function_results>\n\n<think>"));

    const RunResult r =
        run_dsserve("--model-path " + testing::data_dir() + "/tokenizer/deepseek-v3.2 --request " +
                    write("request.json", input.dump()));
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.output, expected);
}

TEST_F(ChatEncodeCli, ChatTemplateFileWins) {
    const Json golden = Json::parse(read_file(testing::golden_dir() + "/chat/chat_requests.json"));
    for (const auto& c : golden["cases"]) {
        const RunResult r = run_dsserve(
            "--model-path " + testing::data_dir() + "/tokenizer/deepseek-v3.2 --request " +
            write("request.json", c["request"].dump()) + " --chat-template " + testing::data_dir() +
            "/" + c["jinja_template"].get<std::string>());
        EXPECT_EQ(r.exit_code, 0);
        EXPECT_EQ(r.output, c["expected_jinja"].get<std::string>()) << c["name"];
    }
}

TEST_F(ChatEncodeCli, TokenizerConfigTemplateIsUsed) {
    fs::create_directories(dir_ / "model");
    fs::copy_file(testing::data_dir() + "/tokenizer/deepseek-v3.2/tokenizer_config.v3.json",
                  dir_ / "model" / "tokenizer_config.json");
    const RunResult r = run_dsserve(
        "--model-path " + (dir_ / "model").string() + " --request " +
        write(
            "request.json",
            R"({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]})"));
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.output, "<｜begin▁of▁sentence｜>S<｜User｜>U<｜Assistant｜>");
}

TEST_F(ChatEncodeCli, BadRequestIsAnError) {
    const RunResult r =
        run_dsserve("--model-path " + testing::data_dir() + "/tokenizer/deepseek-v3.2 --request " +
                        write("request.json", R"({"messages": [{"role": 1}]})"),
                    /*with_stderr=*/true);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.output, "dsserve: error: messages[0].role: must be a string, got a number\n");
}

}  // namespace
}  // namespace dsserve::chat
