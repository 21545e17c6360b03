// `deepseekv31`: the special-token call format of DeepSeek-V3.1 and V3.2-Exp (spec
// serving-api.md §3.2), every marker a single vocabulary token:
//
//   <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{"location": "Tokyo"}
//   <｜tool▁call▁end｜><｜tool▁calls▁end｜>
//
// The name is the text between call-begin and sep; the arguments are the JSON object up to
// call-end. Arguments are re-serialized in Python json.dumps form in both paths (SGLang streams
// the raw model text instead, so its streamed and non-streamed strings can differ; dsserve's
// concatenated fragments equal the non-streamed string). JSON that breaks off or goes wrong keeps
// the part read before the fault, closed (SGLang drops such a call, which a stream that already
// sent the name cannot do); arguments that are not an object at all become `{}`.
#pragma once

#include <string>
#include <string_view>

#include "parsers/block_tool_parser.h"
#include "parsers/python_json.h"

namespace dsserve::parsers {

class V31ToolParser : public BlockToolParser {
public:
    explicit V31ToolParser(std::vector<std::string> known_tools);

private:
    enum class State { kBetween, kName, kArguments };

    size_t parse_block(std::string_view text, bool* closed) override;
    void finish_block(std::string_view rest) override;
    void feed_arguments(std::string_view text);
    void end_arguments();

    State state_ = State::kBetween;
    std::string name_;
    JsonNormalizer arguments_{/*object_only=*/true};
    size_t arguments_sent_ = 0;  // bytes of arguments_.output() already sent
};

}  // namespace dsserve::parsers
