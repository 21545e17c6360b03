// libFuzzer target for the Jinja renderer: the input is a template, parsed and rendered over a
// small chat conversation with tight limits. Any dsserve::Error is a rejected template; a crash,
// sanitizer report, leak or hang is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "chat/jinja/template.h"
#include "core/error.h"
#include "core/json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const dsserve::Json kVariables = dsserve::Json::parse(R"({
        "bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": true, "thinking": true,
        "tools": [{"type": "function", "function": {"name": "f", "description": "d",
                   "parameters": {"type": "object", "properties": {"x": {"type": "number"}}}}}],
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "héllo 😀"},
            {"role": "assistant", "content": "<think>r</think>a", "reasoning_content": "r",
             "tool_calls": [{"id": "1", "type": "function",
                             "function": {"name": "f", "arguments": {"x": 1.5}}}]},
            {"role": "tool", "content": "out"}]})");
    dsserve::chat::jinja::RenderLimits limits;
    limits.max_output_bytes = 1 << 20;
    limits.max_steps = 200000;
    limits.max_call_depth = 32;
    try {
        const dsserve::chat::jinja::Template tmpl(
            std::string_view(reinterpret_cast<const char*>(data), size));
        tmpl.render(kVariables, limits);
    } catch (const dsserve::Error&) {
    }
    return 0;
}
