// Tool-call parsers (spec serving-api.md §3): `deepseekv32` reads the DSML blocks DeepSeek-V3.2
// writes, `deepseekv31` the special-token format of V3.1 / V3.2-Exp. Both are incremental and
// give, for every way the text is cut into chunks, the same assembled result as one push of the
// whole text (that is how the non-streaming path runs them).
//
// Behaviour shared by both formats:
//   - prose before a block is content; whitespace right before a block and right after one is
//     dropped; prose between or after blocks is joined to earlier content with one "\n";
//   - a call is announced when its name is complete: an item with `id` ("call_" + 24 hex digits
//     of a uuid4) and `name`, then items carrying argument fragments whose concatenation is the
//     final arguments string (Python json.dumps(..., ensure_ascii=False) form, python_json.h);
//   - indices are sequential per response, 0, 1, 2, ..., in streaming and non-streaming alike.
//     SGLang's non-streaming index is the called function's position in the request's `tools`
//     (older builds: -1), so two calls to one function share an index there; clients key
//     streamed calls on the index, and the OpenAI API gives every call its own, so dsserve
//     numbers them;
//   - a call to a function not in `known_tools` (when that list is non-empty) is dropped with a
//     warning; the remaining calls keep consecutive indices;
//   - markers are never content: bytes that may be the start of a block opener are held back and
//     released as content at the end if they never became one; a closing marker outside a block
//     (`</｜DSML｜function_calls>`, `</｜DSML｜invoke>`, `</｜DSML｜parameter>`,
//     `<｜tool▁calls▁end｜>`, `<｜tool▁call▁end｜>`) is removed, as SGLang removes it;
//   - a block cut off by the end of the text keeps the calls it announced (the last one closed
//     with the arguments read so far); a block that ends before announcing any call is given
//     back as content, raw, since nothing in it was understood. SGLang's non-streaming path
//     drops the calls of an unterminated block, which a stream cannot take back.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dsserve::parsers {

// One streamed piece of a tool call. The first item of a call has `id` and `name` and empty
// `arguments` (its "type" is "function"); later items have only `arguments`.
struct ToolCallDelta {
    int index = 0;
    std::optional<std::string> id;
    std::optional<std::string> name;
    std::string arguments;
};

struct ToolDelta {
    std::string content;
    std::vector<ToolCallDelta> calls;
};

class ToolParser {
public:
    virtual ~ToolParser() = default;
    virtual ToolDelta push(std::string_view text) = 0;
    // End of the completion: releases held-back text and closes an unfinished call.
    virtual ToolDelta finish() = 0;
};

// `name` is "deepseekv32" or "deepseekv31"; anything else throws Error listing the valid names.
// `known_tools` empty accepts every function name.
std::unique_ptr<ToolParser> make_tool_parser(std::string_view name,
                                             std::vector<std::string> known_tools);

// Names accepted for --tool-call-parser ("none" disables tool parsing).
const std::vector<std::string>& tool_parser_names();
void check_tool_parser_name(std::string_view name);

// DeepSeek-V3.2-Speciale was not trained for tool calls (spec §3.1): a tool parser configured for
// it is a deployment error. Throws Error when `model_variant` names Speciale (case-insensitive)
// and `tool_parser` is set to anything but "none"/"".
void check_tool_parser_allowed(std::string_view model_variant, std::string_view tool_parser);

// "call_" + the first 24 hex digits of a fresh random uuid4.
std::string make_tool_call_id();

}  // namespace dsserve::parsers
