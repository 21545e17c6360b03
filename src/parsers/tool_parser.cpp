#include "parsers/tool_parser.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <random>
#include <utility>

#include "core/error.h"
#include "parsers/dsml_tool_parser.h"
#include "parsers/v31_tool_parser.h"

namespace dsserve::parsers {

const std::vector<std::string>& tool_parser_names() {
    static const std::vector<std::string> names = {"deepseekv32", "deepseekv31"};
    return names;
}

void check_tool_parser_name(std::string_view name) {
    if (name.empty() || name == "none") {
        return;
    }
    const auto& names = tool_parser_names();
    if (std::find(names.begin(), names.end(), name) == names.end()) {
        fail("unknown tool-call parser '", name, "' (valid: deepseekv32, deepseekv31, none)");
    }
}

std::unique_ptr<ToolParser> make_tool_parser(std::string_view name,
                                             std::vector<std::string> known_tools) {
    if (name == "deepseekv32") {
        return std::make_unique<DsmlToolParser>(std::move(known_tools));
    }
    if (name == "deepseekv31") {
        return std::make_unique<V31ToolParser>(std::move(known_tools));
    }
    check_tool_parser_name(name);
    fail("tool-call parser '", name, "' parses nothing; do not create it");
}

void check_tool_parser_allowed(std::string_view model_variant, std::string_view tool_parser) {
    if (tool_parser.empty() || tool_parser == "none") {
        return;
    }
    std::string lower(model_variant);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    DS_CHECK(lower.find("speciale") == std::string::npos, "model '", model_variant,
             "' (DeepSeek-V3.2-Speciale) does not support tool calls; run it without "
             "--tool-call-parser (got '",
             tool_parser, "')");
}

std::string make_tool_call_id() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    uint64_t hi = rng();
    uint64_t lo = rng();
    // uuid4: version nibble 4 in hex digit 12, variant 10xx in hex digit 16.
    hi = (hi & ~uint64_t{0xF000}) | uint64_t{0x4000};
    lo = (lo & ~(uint64_t{0xC} << 60)) | (uint64_t{0x8} << 60);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string id = "call_";
    for (int shift = 60; shift >= 0; shift -= 4) {
        id += kHex[(hi >> shift) & 0xF];
    }
    for (int shift = 60; shift >= 32; shift -= 4) {
        id += kHex[(lo >> shift) & 0xF];
    }
    return id;
}

}  // namespace dsserve::parsers
