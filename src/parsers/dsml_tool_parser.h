// `deepseekv32`: the DSML blocks of DeepSeek-V3.2 (spec serving-api.md §3.3).
//
//   <｜DSML｜function_calls>
//   <｜DSML｜invoke name="get_weather">
//   <｜DSML｜parameter name="location" string="true">Beijing</｜DSML｜parameter>
//   <｜DSML｜parameter name="days" string="false">3</｜DSML｜parameter>
//   </｜DSML｜invoke>
//   </｜DSML｜function_calls>
//
// Arguments: parameters in document order become keys; string="true" values are the stripped raw
// text as a JSON string, other values the stripped text parsed as JSON (kept as a string when it
// is not JSON). An invoke body that is a JSON object (after stripping) is the arguments itself;
// an empty body or a self-closing `<｜DSML｜invoke name="x"/>` is `{}`. A repeated parameter name
// keeps its first value. A parameter without its closing tag ends at `</｜DSML｜invoke>`.
//
// Streaming: the name item goes out as soon as the invoke tag is complete; then the arguments grow
// as the longest prefix of their final JSON that later text cannot change: `{"location": "Bei`,
// `jing`, `", "days": `, `3}`. Values of non-string parameters and JSON-object bodies are only
// known when they end, so they go out whole.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_set>

#include "parsers/block_tool_parser.h"

namespace dsserve::parsers {

// Builds one invoke's arguments from the parameter tags of its body, incrementally. Each push()
// and finish() returns the next piece of the arguments string.
class DsmlArguments {
public:
    std::string push(std::string_view body);
    std::string finish();

private:
    void open_parameter(std::string_view name, bool is_string);
    void close_parameter();
    void stream_value();

    bool opened_ = false;  // '{' written
    size_t written_ = 0;   // parameters written (decides the ", " separator)
    bool in_value_ = false;
    std::string buf_;
    std::string out_;
    std::unordered_set<std::string> keys_;
    bool is_string_ = false;
    bool repeated_ = false;
    std::string value_;        // raw value bytes read so far
    size_t streamed_end_ = 0;  // value_ bytes already written (string values only)
    bool value_started_ = false;
    size_t value_start_ = 0;  // first non-whitespace byte of value_
};

class DsmlToolParser : public BlockToolParser {
public:
    explicit DsmlToolParser(std::vector<std::string> known_tools);

private:
    enum class State { kBetween, kBody };
    enum class Body { kUndecided, kJson, kParameters };

    size_t parse_block(std::string_view text, bool* closed) override;
    void finish_block(std::string_view rest) override;
    void feed_body(std::string_view text);
    void end_invoke();

    State state_ = State::kBetween;
    Body body_ = Body::kUndecided;
    std::string json_body_;
    DsmlArguments arguments_;
};

}  // namespace dsserve::parsers
