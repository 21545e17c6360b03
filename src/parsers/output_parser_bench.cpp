// Throughput of the output parsers on a long synthetic V3.2 completion (reasoning, then one DSML
// block of 200 calls): the non-streaming pass and the streaming path at several chunk sizes.
//   cmake --build build --target dsserve_parsers_bench && ./build/src/parsers/dsserve_parsers_bench
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "parsers/output_parser.h"

namespace {

using dsserve::parsers::OutputParser;
using dsserve::parsers::OutputParserOptions;

std::string make_completion() {
    std::mt19937 rng(7);
    const std::vector<std::string> words = {"the",    "weather", "北京", "杭州", "tool",
                                            "result", "check",   "数据", "then", "answer"};
    auto sentence = [&](int n) {
        std::string s;
        for (int i = 0; i < n; ++i) {
            s += (i ? " " : "") + words[rng() % words.size()];
        }
        return s;
    };
    std::string text = sentence(20000) + "</think>\n\n<｜DSML｜function_calls>\n";
    for (int i = 0; i < 200; ++i) {
        text += "<｜DSML｜invoke name=\"tool_" + std::to_string(i % 7) + "\">\n";
        text += "<｜DSML｜parameter name=\"text\" string=\"true\">" + sentence(80) +
                "</｜DSML｜parameter>\n";
        text += "<｜DSML｜parameter name=\"opts\" string=\"false\">{\"n\": " + std::to_string(i) +
                ", \"w\": [1.5, 2e-7, true]}</｜DSML｜parameter>\n</｜DSML｜invoke>\n";
    }
    return text + "</｜DSML｜function_calls>";
}

// Best of `rounds` wall times of one full pass, in seconds.
template <typename F>
double best_seconds(int rounds, F&& pass) {
    double best = 1e30;
    for (int r = 0; r < rounds; ++r) {
        auto start = std::chrono::steady_clock::now();
        pass();
        std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
        best = std::min(best, took.count());
    }
    return best;
}

}  // namespace

int main() {
    const std::string text = make_completion();
    OutputParserOptions options{"deepseek-v3", "deepseekv32", true, true, {}};
    size_t calls = 0;
    double whole =
        best_seconds(20, [&] { calls = OutputParser::parse(text, options).tool_calls.size(); });
    std::printf("completion %zu bytes, %zu calls\n", text.size(), calls);
    std::printf("non-streaming   %8.2f ms  %7.1f MB/s\n", whole * 1e3, text.size() / whole / 1e6);
    for (size_t chunk : {1, 4, 16, 64}) {
        double t = best_seconds(10, [&] {
            OutputParser parser(options);
            for (size_t pos = 0; pos < text.size(); pos += chunk) {
                parser.push(std::string_view(text).substr(pos, chunk));
            }
            parser.finish();
        });
        size_t pushes = (text.size() + chunk - 1) / chunk;
        std::printf("chunk %3zu bytes %8.2f ms  %7.1f MB/s  %6.0f ns/push\n", chunk, t * 1e3,
                    text.size() / t / 1e6, t / pushes * 1e9);
    }
    return 0;
}
