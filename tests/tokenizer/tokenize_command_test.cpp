// Runs the built dsserve binary: `dsserve tokenize` in its encode and decode forms.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "core/file.h"
#include "core/json.h"
#include "test_data.h"

namespace dsserve::tokenizer {
namespace {

struct Result {
    int status = -1;
    std::string out;
};

Result run_dsserve(const std::string& args) {
    const auto binary = std::filesystem::path(DSSERVE_BINARY_DIR) / "dsserve";
    const std::string command = "'" + binary.string() + "' " + args + " 2>&1";
    Result result;
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) {
        return result;
    }
    std::array<char, 4096> buffer;
    std::size_t n;
    while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
        result.out.append(buffer.data(), n);
    }
    const int status = pclose(pipe);
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

std::string model_arg() {
    return "--model-path '" + testing::v32_dir().string() + "'";
}

TEST(TokenizeCommandTest, EncodesTextToAJsonList) {
    const std::string text = "Hello <think>world</think> 12345 中文";
    const Result r = run_dsserve("tokenize " + model_arg() + " --text '" + text + "'");
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_EQ(Json::parse(r.out).get<std::vector<std::int32_t>>(), testing::v32().encode(text));
}

TEST(TokenizeCommandTest, EncodesAFile) {
    const auto path =
        std::filesystem::path(DSSERVE_DATA_DIR) / "encoding" / "deepseek-v3.2" / "test_output.txt";
    const Result r = run_dsserve("tokenize " + model_arg() + " --add-special-tokens --file '" +
                                 path.string() + "'");
    ASSERT_EQ(r.status, 0) << r.out.substr(0, 500);
    EXPECT_EQ(Json::parse(r.out).get<std::vector<std::int32_t>>(),
              testing::v32().encode(read_file(path), true));
}

TEST(TokenizeCommandTest, DecodesIds) {
    const auto ids = testing::v32().encode("<｜begin▁of▁sentence｜>Hi <think>");
    std::string list;
    for (std::int32_t id : ids) {
        list += (list.empty() ? "" : ",") + std::to_string(id);
    }
    Result r = run_dsserve("tokenize " + model_arg() + " --decode " + list);
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_EQ(r.out, "Hi <think>\n");
    r = run_dsserve("tokenize " + model_arg() + " --keep-special-tokens --decode " + list);
    EXPECT_EQ(r.out, "<｜begin▁of▁sentence｜>Hi <think>\n");
}

TEST(TokenizeCommandTest, BadInputIsAnErrorNotACrash) {
    Result r = run_dsserve("tokenize " + model_arg() + " --decode 1,x,3");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.out.find("dsserve: error:"), std::string::npos) << r.out;
    r = run_dsserve("tokenize --model-path /nonexistent --text hi");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.out.find("tokenizer.json"), std::string::npos) << r.out;
    r = run_dsserve("tokenize " + model_arg() + " --text a --decode 1");
    EXPECT_EQ(r.status, 1);
}

}  // namespace
}  // namespace dsserve::tokenizer
