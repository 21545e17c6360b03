// `dsserve recipe` as a user runs it: the command on stdout, an impossible combination's error
// block on stderr with exit status 1, and --dump-json.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <set>
#include <string>

#include "core/file.h"
#include "core/json.h"
#include "recipe/recipe.h"

namespace dsserve::recipe {
namespace {

struct Output {
    int status;
    std::string out;
    std::string err;
};

// Runs `dsserve <args>` through the shell, which also joins the recipes' backslash-newlines;
// `wrapper` goes before the binary (a timeout).
Output run_dsserve(const std::string& args, const std::string& wrapper = "") {
    std::filesystem::path err_path = std::filesystem::temp_directory_path() /
                                     ("dsserve_recipe_err_" + std::to_string(::getpid()));
    std::string cmd =
        wrapper + std::string(DSSERVE_BINARY_DIR) + "/dsserve " + args + " 2>" + err_path.string();
    FILE* pipe = ::popen(cmd.c_str(), "r");
    std::string out;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) {
        out.append(buf.data(), n);
    }
    int status = ::pclose(pipe);
    std::string err = read_file(err_path);
    std::filesystem::remove(err_path);
    return {WEXITSTATUS(status), out, err};
}

Output run(const std::string& args) {
    return run_dsserve("recipe " + args);
}

TEST(RecipeCliTest, PrintsTheCommand) {
    Output r =
        run("--hardware mi300x --model v32exp --strategy tp,ep --strategy mtp "
            "--reasoning-parser --tool-call-parser");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(r.out,
              "dsserve serve \\\n"
              "  --model deepseek-ai/DeepSeek-V3.2-Exp \\\n"
              "  --trust-remote-code \\\n"
              "  --nsa-prefill-backend tilelang \\\n"
              "  --nsa-decode-backend tilelang \\\n"
              "  --cuda-graph-max-bs 64 \\\n"
              "  --tp 8 \\\n"
              "  --ep 8 \\\n"
              "  --speculative-algorithm EAGLE \\\n"
              "  --speculative-num-steps 3 \\\n"
              "  --speculative-eagle-topk 1 \\\n"
              "  --speculative-num-draft-tokens 4 \\\n"
              "  --tool-call-parser deepseekv31 \\\n"
              "  --reasoning-parser deepseek-v3 \\\n"
              "  --chat-template ./data/chat_templates/tool_chat_template_deepseekv32.jinja\n");
}

TEST(RecipeCliTest, DefaultsFollowTheHardware) {
    Output r = run("");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, make_recipe(Options{}).text() + "\n");
    r = run("--hardware b200");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("--model nvidia/DeepSeek-V3.2-NVFP4"), std::string::npos) << r.out;
}

TEST(RecipeCliTest, ImpossibleCombinationPrintsTheGuidesErrorAndFails) {
    Output r = run("--hardware h200 --model v32speciale --tool-call-parser");
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err,
              "# Error: DeepSeek-V3.2-Speciale doesn't support tool calling\n"
              "# Please select \"Disabled\" for Tool Call Parser or choose a different model\n");
}

TEST(RecipeCliTest, RejectsUnknownValues) {
    Output r = run("--hardware a100");
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("a100"), std::string::npos) << r.err;
    r = run("--strategy tp,pp");
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.err, "dsserve: error: unknown strategy 'pp' (expected tp, dp, ep or mtp)\n");
}

// Every command the generator prints is one `dsserve serve` accepts: all its flags parse. On a
// machine without 8 (or 4) GPUs the server then stops at the tensor-parallel check; the timeout
// ends it anywhere it could start.
TEST(RecipeCliTest, EveryCommandParsesAsDsserveServe) {
    std::set<std::string> commands;
    for (const Options& options : all_combinations()) {
        Recipe recipe = make_recipe(options);
        if (recipe.ok()) {
            commands.insert(recipe.command);
        }
    }
    ASSERT_GT(commands.size(), 100u);
    const std::string prefix = "dsserve ";
    for (const std::string& command : commands) {
        ASSERT_TRUE(command.starts_with(prefix + "serve \\\n")) << command;
        Output r = run_dsserve(command.substr(prefix.size()), "timeout 60 ");
        EXPECT_EQ(r.err.find("Run with --help"), std::string::npos) << command << "\n" << r.err;
        EXPECT_EQ(r.err.find("not expected"), std::string::npos) << command << "\n" << r.err;
        EXPECT_NE(r.status, 0) << command;
    }
}

TEST(RecipeCliTest, DumpJsonIsTheTable) {
    Output r = run("--dump-json");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(Json::parse(r.out), table_json());
}

}  // namespace
}  // namespace dsserve::recipe
