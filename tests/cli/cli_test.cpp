// The dsserve binary as a user runs it.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "core/file.h"
#include "core/json.h"
#include "core/npy.h"

namespace dsserve {
namespace {

namespace fs = std::filesystem;

struct Result {
    int status;
    std::string out;
};

Result run(const std::string& args) {
    std::string cmd = std::string(DSSERVE_BINARY_DIR) + "/dsserve " + args + " 2>&1";
    FILE* pipe = ::popen(cmd.c_str(), "r");
    std::string out;
    std::array<char, 4096> buf;
    std::size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) {
        out.append(buf.data(), n);
    }
    int status = ::pclose(pipe);
    return {WEXITSTATUS(status), out};
}

class CliTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = fs::temp_directory_path() / ("dsserve_cli_" + std::to_string(::getpid()));
        fs::create_directories(dir_);
        auto r = run(
            "make-model " + (dir_ / "m").string() +
            R"( --preset tiny --json-model-override-args '{"vocab_size": 2048, "num_hidden_layers": 2}' --seed 3)");
        ASSERT_EQ(r.status, 0) << r.out;
    }
    static void TearDownTestSuite() { fs::remove_all(dir_); }
    static std::string model() { return (dir_ / "m").string(); }
    static fs::path dir_;
};
fs::path CliTest::dir_;

TEST_F(CliTest, ForwardWritesLogitsOfEveryPositionAndIncrementalAgrees) {
    auto out = (dir_ / "l.npy").string();
    auto r = run("forward --model-path " + model() + " --input-ids 5,6,7,8,9 --out " + out);
    ASSERT_EQ(r.status, 0) << r.out;
    auto full = read_npy(out);
    EXPECT_EQ(full.shape, (std::vector<std::int64_t>{5, 2048}));
    r = run("forward --model-path " + model() +
            " --input-ids 5,6,7,8,9 --incremental --mtp --out " + out);
    ASSERT_EQ(r.status, 0) << r.out;
    auto inc = read_npy(out);
    for (std::size_t i = 0; i < full.data.size(); ++i) {
        ASSERT_NEAR(full.data[i], inc.data[i], 1e-4) << i;
    }
    EXPECT_EQ(read_npy(out + ".mtp.npy").shape, (std::vector<std::int64_t>{4, 2048}));
}

TEST_F(CliTest, GreedyGenerateIsDeterministicAndSamplingFollowsTheSeed) {
    auto a = run("generate --model-path " + model() +
                 " --input-ids 1,2,3 --max-new-tokens 8 --temperature 0");
    auto b = run("generate --model-path " + model() +
                 " --input-ids 1,2,3 --max-new-tokens 8 --temperature 0");
    ASSERT_EQ(a.status, 0) << a.out;
    EXPECT_EQ(a.out, b.out);
    auto ids = Json::parse(a.out.substr(0, a.out.find('\n')));
    EXPECT_GE(ids.size(), 1u);
    auto s1 = run("generate --model-path " + model() +
                  " --input-ids 1,2,3 --max-new-tokens 8 --seed 7 --ignore-eos");
    auto s2 = run("generate --model-path " + model() +
                  " --input-ids 1,2,3 --max-new-tokens 8 --seed 7 --ignore-eos");
    auto s3 = run("generate --model-path " + model() +
                  " --input-ids 1,2,3 --max-new-tokens 8 --seed 8 --ignore-eos");
    EXPECT_EQ(s1.out, s2.out);
    EXPECT_NE(s1.out, s3.out);
}

TEST_F(CliTest, BadInputIsAClearErrorNotACrash) {
    struct Case {
        std::string args, message;
    };
    std::vector<Case> cases = {
        {"generate --model-path " + model() + " --input-ids 1,x,3", "'x' is not a token id"},
        {"generate --model-path " + model() + " --input-ids 1,99999", "outside the vocabulary"},
        {"generate --model-path " + model() + " --input-ids 1 --temperature -1", "--temperature"},
        {"generate --model-path " + model() + " --input-ids 1 --top-p 0", "--top-p"},
        {"generate --model-path /nonexistent --input-ids 1", "/nonexistent"},
        {"forward --model-path " + model() + " --input-ids 1 --device cuda --out x.npy", "CUDA"},
        {"forward --model-path " + model() +
             R"( --input-ids 1 --json-model-override-args '{"n_group": 3}' --out x.npy)",
         "n_group"},
        {"make-model " + (dir_ / "bad").string() + " --preset huge", "unknown preset"},
    };
    for (const auto& c : cases) {
        auto r = run(c.args);
        EXPECT_EQ(r.status, 1) << c.args << "\n" << r.out;
        EXPECT_NE(r.out.find(c.message), std::string::npos) << c.args << "\n" << r.out;
        EXPECT_NE(r.out.find("dsserve: error:"), std::string::npos) << r.out;
    }
}

TEST_F(CliTest, DefaultModelIsMadeIntoTheCacheOnFirstUse) {
    auto cache = (dir_ / "cache").string();
    std::string cmd =
        "env DSSERVE_CACHE_DIR=" + cache + " " + std::string(DSSERVE_BINARY_DIR) +
        "/dsserve generate --input-ids 0,1000 --max-new-tokens 2 --temperature 0 --ignore-eos 2>&1";
    FILE* pipe = ::popen(cmd.c_str(), "r");
    char buf[4096];
    std::string out;
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) {
        out.append(buf, n);
    }
    EXPECT_EQ(WEXITSTATUS(::pclose(pipe)), 0) << out;
    EXPECT_TRUE(fs::exists(fs::path(cache) / "models" / "tiny-v1" / "config.json")) << out;
    EXPECT_TRUE(fs::exists(fs::path(cache) / "models" / "tiny-v1" / "tokenizer.json"));
}

}  // namespace
}  // namespace dsserve
