// Random text through every parser combination, streamed in chunks derived from the input and
// parsed in one pass; any difference between the two results aborts (a crash to libFuzzer).
//
// Input layout: byte 0 picks the options, byte 1 seeds the chunking, the rest is the completion.
// Bytes 0x01..0x0F in the completion stand for marker strings, so short inputs reach the parsers'
// structure; every other byte is literal.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>

#include "core/log.h"
#include "parsers/output_parser.h"
#include "parsers/python_json.h"

namespace {

using dsserve::parsers::OutputParser;
using dsserve::parsers::OutputParserOptions;
using dsserve::parsers::ParsedMessage;
using dsserve::parsers::StreamAssembler;

constexpr std::string_view kMarkers[] = {
    "",
    "<think>",
    "</think>",
    "<｜DSML｜function_calls>",
    "</｜DSML｜function_calls>",
    "<｜DSML｜invoke name=\"get_weather\">",
    "</｜DSML｜invoke>",
    "<｜DSML｜parameter name=\"city\" string=\"true\">",
    "<｜DSML｜parameter name=\"days\" string=\"false\">",
    "</｜DSML｜parameter>",
    "<｜tool▁calls▁begin｜>",
    "<｜tool▁calls▁end｜>",
    "<｜tool▁call▁begin｜>",
    "<｜tool▁sep｜>",
    "<｜tool▁call▁end｜>",
    "<｜DSML｜invoke name=\"other\"/>",
};

std::string expand(std::string_view raw) {
    std::string text;
    for (char c : raw) {
        auto byte = static_cast<unsigned char>(c);
        if (byte >= 1 && byte <= 15) {
            text += kMarkers[byte];
        } else {
            text += c;
        }
    }
    return text;
}

void check(bool ok, const char* what, const ParsedMessage& a, const ParsedMessage& b) {
    if (ok) {
        return;
    }
    std::fprintf(stderr, "divergence: %s\n stream: %s\n whole:  %s\n", what,
                 dsserve::parsers::message_to_json(a)
                     .dump(-1, ' ', false, dsserve::Json::error_handler_t::replace)
                     .c_str(),
                 dsserve::parsers::message_to_json(b)
                     .dump(-1, ' ', false, dsserve::Json::error_handler_t::replace)
                     .c_str());
    std::abort();
}

bool same(const ParsedMessage& a, const ParsedMessage& b) {
    if (a.content != b.content || a.reasoning_content != b.reasoning_content ||
        a.tool_calls.size() != b.tool_calls.size()) {
        return false;
    }
    for (size_t i = 0; i < a.tool_calls.size(); ++i) {
        if (a.tool_calls[i].index != b.tool_calls[i].index ||
            a.tool_calls[i].name != b.tool_calls[i].name ||
            a.tool_calls[i].arguments != b.tool_calls[i].arguments) {
            return false;
        }
    }
    return true;
}

ParsedMessage stream(const std::string& text, const OutputParserOptions& options, std::mt19937& rng,
                     size_t max_chunk) {
    OutputParser parser(options);
    StreamAssembler assembler;
    std::uniform_int_distribution<size_t> size(1, max_chunk);
    for (size_t pos = 0; pos < text.size();) {
        size_t n = size(rng);
        assembler.add(parser.push(std::string_view(text).substr(pos, n)));
        pos += n;
    }
    assembler.add(parser.finish());
    return assembler.message();
}

void check_json_prefix_property(const std::string& text, std::mt19937& rng) {
    dsserve::parsers::JsonNormalizer whole(/*object_only=*/true);
    whole.push(text);
    whole.finish();
    dsserve::parsers::JsonNormalizer parts(/*object_only=*/true);
    std::uniform_int_distribution<size_t> size(1, 8);
    std::string last;
    for (size_t pos = 0; pos < text.size();) {
        size_t n = size(rng);
        parts.push(std::string_view(text).substr(pos, n));
        pos += n;
        if (!parts.output().starts_with(last)) {
            std::abort();
        }
        last = parts.output();
    }
    parts.finish();
    if (parts.output() != whole.output() || parts.valid() != whole.valid() ||
        !parts.output().starts_with(last)) {
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const bool quiet = (dsserve::log::set_level(dsserve::log::Level::kError), true);
    (void)quiet;
    if (size < 2) {
        return 0;
    }
    uint8_t config = data[0];
    std::mt19937 rng(data[1]);
    std::string text = expand(std::string_view(reinterpret_cast<const char*>(data) + 2, size - 2));

    static const char* kTools[] = {"none", "deepseekv32", "deepseekv31", "deepseekv32"};
    OutputParserOptions options;
    options.reasoning_parser = (config & 1) ? "deepseek-v3" : "none";
    options.tool_parser = kTools[(config >> 1) & 3];
    options.thinking = (config & 8) != 0;
    options.stream_reasoning = (config & 16) == 0;
    if (config & 32) {
        options.tool_names = {"get_weather"};
    }

    ParsedMessage whole = OutputParser::parse(text, options);
    check(same(stream(text, options, rng, 1), whole), "1-byte chunks", whole, whole);
    ParsedMessage random = stream(text, options, rng, (config & 64) ? 4 : 64);
    check(same(random, whole), "random chunks", random, whole);
    check_json_prefix_property(text, rng);
    return 0;
}
