#include "parsers/python_json.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "core/json.h"

namespace dsserve::parsers {
namespace {

std::vector<Json> read_jsonl(const std::string& name) {
    std::ifstream in(std::string(PARSERS_GOLDEN_DIR) + "/" + name);
    EXPECT_TRUE(in.good()) << name;
    std::vector<Json> rows;
    std::string line;
    while (std::getline(in, line)) {
        rows.push_back(Json::parse(line));
    }
    return rows;
}

// Golden rows: CPython 3.11's json.dumps(json.loads(input), ensure_ascii=False), or null when
// json.loads rejects the input (tools/gen_parser_goldens.py).
TEST(PythonJsonTest, MatchesPythonJsonDumps) {
    std::vector<Json> rows = read_jsonl("python_json.jsonl");
    ASSERT_GT(rows.size(), 80u);
    for (const Json& row : rows) {
        std::string input = row["input"];
        std::string out;
        bool ok = python_json_dumps(input, &out);
        if (row["output"].is_null()) {
            EXPECT_FALSE(ok) << "accepted [" << input << "] as " << out;
        } else {
            EXPECT_TRUE(ok) << "rejected [" << input << "]";
            EXPECT_EQ(out, row["output"].get<std::string>()) << "input [" << input << "]";
        }
    }
}

// Whatever the chunking, output() only grows, every intermediate output is a prefix of the final
// one, and the final one does not depend on the chunking.
TEST(PythonJsonTest, StreamedOutputIsAlwaysAPrefixOfTheFinalOutput) {
    for (const Json& row : read_jsonl("python_json.jsonl")) {
        std::string input = row["input"];
        JsonNormalizer whole;
        whole.push(input);
        whole.finish();
        for (size_t cut = 0; cut <= input.size(); ++cut) {
            JsonNormalizer parts;
            parts.push(std::string_view(input).substr(0, cut));
            std::string before = parts.output();
            parts.push(std::string_view(input).substr(cut));
            std::string middle = parts.output();
            parts.finish();
            EXPECT_EQ(parts.output(), whole.output()) << input << " cut " << cut;
            EXPECT_EQ(parts.valid(), whole.valid()) << input;
            EXPECT_TRUE(middle.starts_with(before)) << input << " cut " << cut;
            EXPECT_TRUE(parts.output().starts_with(middle)) << input << " cut " << cut;
        }
    }
}

TEST(PythonJsonTest, StreamsStringsAndHoldsNumbers) {
    JsonNormalizer n(/*object_only=*/true);
    n.push(R"({"location":"Bei)");
    EXPECT_EQ(n.output(), R"({"location": "Bei)");
    n.push(R"(jing","days":1)");
    EXPECT_EQ(n.output(), R"({"location": "Beijing")");  // "1" may become "12" or "1.5"
    n.push(R"(2})");
    EXPECT_EQ(n.output(), R"({"location": "Beijing", "days": 12})");
    n.finish();
    EXPECT_TRUE(n.valid());
}

TEST(PythonJsonTest, RepairsTruncatedOrBrokenInput) {
    auto repaired = [](std::string_view text) {
        JsonNormalizer n(/*object_only=*/true);
        n.push(text);
        n.finish();
        EXPECT_FALSE(n.valid()) << text;
        return n.output();
    };
    EXPECT_EQ(repaired(R"({"a": "cut)"), R"({"a": "cut"})");
    EXPECT_EQ(repaired(R"({"a": [1, {"b": tr)"), R"({"a": [1, {}]})");
    EXPECT_EQ(repaired(R"({"a": 1, "b")"), R"({"a": 1})");
    EXPECT_EQ(repaired(R"({"a": 1, oops})"), R"({"a": 1})");
    EXPECT_EQ(repaired(R"({"a": 1.})"), R"({})");
    EXPECT_EQ(repaired(R"({"a": 12)"), R"({"a": 12})");
    EXPECT_EQ(repaired(R"([1, 2])"), "");  // not an object: nothing at all
    EXPECT_EQ(repaired("  "), "");
}

TEST(PythonJsonTest, RepeatedKeyKeepsTheFirstValue) {
    std::string out;
    ASSERT_TRUE(
        python_json_dumps(R"({"a": 1, "b": {"c": [2]}, "a": {"x": [3, "y"]}, "d": 4})", &out));
    EXPECT_EQ(out, R"({"a": 1, "b": {"c": [2]}, "d": 4})");
}

TEST(PythonJsonTest, LoneSurrogatesStayEscaped) {
    std::string out;
    ASSERT_TRUE(python_json_dumps(R"(["\udc00", "\ud83dx", "\ud83d\u0041", "\ud83d"])", &out));
    EXPECT_EQ(out, R"(["\udc00", "\ud83dx", "\ud83dA", "\ud83d"])");
}

}  // namespace
}  // namespace dsserve::parsers
