#include "core/pyjson.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>

namespace dsserve {
namespace {

// Expected strings are what CPython 3.11 prints for repr(x) / json.dumps(x).
TEST(PyJson, FloatReprMatchesPython) {
    EXPECT_EQ(py_float_repr(1.0), "1.0");
    EXPECT_EQ(py_float_repr(100.0), "100.0");
    EXPECT_EQ(py_float_repr(1e15), "1000000000000000.0");
    EXPECT_EQ(py_float_repr(1e16), "1e+16");
    EXPECT_EQ(py_float_repr(123456789012345678.0), "1.2345678901234568e+17");
    EXPECT_EQ(py_float_repr(0.0001), "0.0001");
    EXPECT_EQ(py_float_repr(0.00001), "1e-05");
    EXPECT_EQ(py_float_repr(1.5e-7), "1.5e-07");
    EXPECT_EQ(py_float_repr(-0.0), "-0.0");
    EXPECT_EQ(py_float_repr(0.1 + 0.2), "0.30000000000000004");
    EXPECT_EQ(py_float_repr(5e-324), "5e-324");
    EXPECT_EQ(py_float_repr(1.7976931348623157e308), "1.7976931348623157e+308");
    EXPECT_EQ(py_float_repr(std::numeric_limits<double>::infinity()), "Infinity");
    EXPECT_EQ(py_float_repr(std::nan("")), "NaN");
}

// Golden rows: CPython 3.11's json.dumps of doubles chosen bit pattern by bit pattern (exponent
// boundaries, subnormals, random values), written by tools/gen_parser_goldens.py beside the
// parsers' goldens, whose tool-call arguments carry these floats.
TEST(PyJson, FloatReprMatchesPythonGolden) {
    std::ifstream in(std::string(DSSERVE_GOLDEN_DIR) + "/parsers/float_repr.jsonl");
    ASSERT_TRUE(in.good());
    size_t rows = 0;
    std::string line;
    while (std::getline(in, line)) {
        const Json row = Json::parse(line);
        const std::uint64_t bits = std::stoull(row["bits"].get<std::string>(), nullptr, 16);
        double value = 0;
        std::memcpy(&value, &bits, sizeof(value));
        EXPECT_EQ(py_float_repr(value), row["repr"].get<std::string>()) << row.dump();
        ++rows;
    }
    EXPECT_GT(rows, 5000u);
}

TEST(PyJson, DumpsUsesPythonSeparatorsAndKeepsOrder) {
    const Json value =
        Json::parse(R"({"b": [1, 2.5, true, null], "a": {"x": "y"}, "e": {}, "l": []})");
    EXPECT_EQ(py_json_dumps(value),
              R"({"b": [1, 2.5, true, null], "a": {"x": "y"}, "e": {}, "l": []})");
    PyJsonOptions sorted;
    sorted.sort_keys = true;
    EXPECT_EQ(py_json_dumps(value, sorted),
              R"({"a": {"x": "y"}, "b": [1, 2.5, true, null], "e": {}, "l": []})");
}

TEST(PyJson, EscapesLikePython) {
    const Json value = std::string("\x01 é\"\\\t\n\r\b\f\x7f\u2028😀");
    EXPECT_EQ(py_json_dumps(value), "\"\\u0001 é\\\"\\\\\\t\\n\\r\\b\\f\x7f\u2028😀\"");
    PyJsonOptions ascii;
    ascii.ensure_ascii = true;
    EXPECT_EQ(py_json_dumps(Json("é😀"), ascii), "\"\\u00e9\\ud83d\\ude00\"");
}

TEST(PyJson, EscapedContentsHaveNoQuotes) {
    std::string out = "x";
    py_json_append_escaped(out, std::string("a\"b\\c\n\r\t\b\f\x01\x1f\x7f é", 16), false);
    EXPECT_EQ(out, "xa\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\x7f é");
    out.clear();
    py_json_append_escaped(out, "é€😀", true);
    EXPECT_EQ(out, "\\u00e9\\u20ac\\ud83d\\ude00");
}

// json.dumps never sees bytes that are not UTF-8 (Python strings are decoded), but a client's
// request or a model's output can hold them; they pass through unchanged rather than being
// escaped as if they were Latin-1 characters.
TEST(PyJson, BytesThatAreNotUtf8PassThrough) {
    const std::string bad = "a\xff\xc3(\xe2\x82";
    std::string out;
    py_json_append_escaped(out, bad, true);
    EXPECT_EQ(out, bad);
    out.clear();
    py_json_append_string(out, bad, false);
    EXPECT_EQ(out, "\"" + bad + "\"");
}

TEST(PyJson, UEscapeIsFourLowercaseHexDigits) {
    std::string out;
    py_json_append_u_escape(out, 0x1f);
    py_json_append_u_escape(out, 0xdbff);
    py_json_append_u_escape(out, 0xABCD);
    EXPECT_EQ(out, "\\u001f\\udbff\\uabcd");
}

TEST(PyJson, IndentMatchesPython) {
    PyJsonOptions options;
    options.indent = "  ";
    EXPECT_EQ(py_json_dumps(Json::parse(R"({"a": [1, {}], "b": []})"), options),
              "{\n  \"a\": [\n    1,\n    {}\n  ],\n  \"b\": []\n}");
}

}  // namespace
}  // namespace dsserve
