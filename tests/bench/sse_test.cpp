#include "bench/sse.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace dsserve::bench {
namespace {

std::vector<std::string> split_every(const std::string& body, std::size_t piece) {
    LineSplitter splitter;
    std::vector<std::string> lines;
    const auto collect = [&](std::string_view line) { lines.emplace_back(line); };
    for (std::size_t i = 0; i < body.size(); i += piece) {
        splitter.feed(std::string_view(body).substr(i, piece), collect);
    }
    splitter.finish(collect);
    return lines;
}

TEST(LineSplitter, SameLinesWhateverTheChunking) {
    const std::string body =
        "data: {\"text\": \"a\"}\n\ndata: {\"text\": \"ab\"}\r\n\r\n  \n\tdata: [DONE]\n\n";
    const std::vector<std::string> want = {"data: {\"text\": \"a\"}", "data: {\"text\": \"ab\"}",
                                           "data: [DONE]"};
    for (std::size_t piece = 1; piece <= body.size(); ++piece) {
        EXPECT_EQ(split_every(body, piece), want) << "piece " << piece;
    }
}

TEST(LineSplitter, LastLineWithoutNewline) {
    EXPECT_EQ(split_every("{\"a\": 1}\n{\"b\": 2}", 3),
              (std::vector<std::string>{"{\"a\": 1}", "{\"b\": 2}"}));
    EXPECT_TRUE(split_every(" \n\r\n\n", 2).empty());
}

TEST(SsePayload, RemovesPrefixWithItsSpaceOnly) {
    EXPECT_EQ(sse_payload("data: [DONE]"), "[DONE]");
    EXPECT_EQ(sse_payload("data:[DONE]"), "data:[DONE]");  // as bench_serving: prefix has a space
    EXPECT_EQ(sse_payload("{\"text\": 1}"), "{\"text\": 1}");
}

}  // namespace
}  // namespace dsserve::bench
