// A compiled Jinja chat template. Rendering matches Python jinja2 with transformers' chat-template
// environment (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, its tojson,
// raise_exception, strftime_now, dict and namespace globals) byte for byte on the subset that
// Hugging Face chat templates use; docs/chat-encoding.md lists what is left out.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/json.h"

namespace dsserve::chat::jinja {

struct StmtListHolder;

// Bounds that keep a hostile template from exhausting the process. Exceeding one is an Error.
struct RenderLimits {
    std::size_t max_output_bytes = 64u << 20;  // also bounds every string and list built
    std::uint64_t max_steps = 50'000'000;      // statements plus expression nodes evaluated
    int max_call_depth = 64;                   // nested macro calls
};

class Template {
public:
    // Parses the template; throws Error with line and column on a syntax error or unsupported
    // syntax.
    explicit Template(std::string_view source);

    // Renders with `variables` (a JSON object) as the template context. Throws Error on a
    // render-time failure: raise_exception(), an undefined value used in arithmetic, a type
    // error Python would raise, a forbidden method, or a limit.
    std::string render(const Json& variables, const RenderLimits& limits = {}) const;

private:
    std::shared_ptr<const StmtListHolder> program_;
};

}  // namespace dsserve::chat::jinja
