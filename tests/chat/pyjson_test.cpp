#include "chat/pyjson.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace dsserve::chat {
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

TEST(PyJson, IndentMatchesPython) {
    PyJsonOptions options;
    options.indent = "  ";
    EXPECT_EQ(py_json_dumps(Json::parse(R"({"a": [1, {}], "b": []})"), options),
              "{\n  \"a\": [\n    1,\n    {}\n  ],\n  \"b\": []\n}");
}

}  // namespace
}  // namespace dsserve::chat
