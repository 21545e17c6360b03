// Helpers for the parser tests: run a parser over a chunking, compare messages without ids.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "core/log.h"
#include "parsers/output_parser.h"

namespace dsserve::parsers::testing {

// Dropped unknown calls log a warning each; thousands of chunkings would flood the test log.
inline const bool kQuietLogs = (log::set_level(log::Level::kError), true);

// Readable form of a message for failure output; ids are left out since they are random.
inline std::string describe(const ParsedMessage& m) {
    std::string out = "content=[" + m.content + "] reasoning=";
    out += m.reasoning_content ? "[" + *m.reasoning_content + "]" : "null";
    for (const ToolCall& call : m.tool_calls) {
        out += " call#" + std::to_string(call.index) + " " + call.name + " " + call.arguments;
    }
    return out;
}

inline std::string at_chunks(const std::vector<std::string>& chunks) {
    std::string out = "chunk sizes:";
    for (const auto& c : chunks) {
        out += " " + std::to_string(c.size());
    }
    return out;
}

// Pushes each chunk, then finishes; returns the assembled message and, through `deltas`, every
// delta produced (including the finish one).
inline ParsedMessage run_chunks(const std::vector<std::string>& chunks,
                                const OutputParserOptions& options,
                                std::vector<ParsedDelta>* deltas = nullptr) {
    OutputParser parser(options);
    StreamAssembler assembler;
    for (const std::string& chunk : chunks) {
        ParsedDelta delta = parser.push(chunk);
        assembler.add(delta);
        if (deltas) {
            deltas->push_back(std::move(delta));
        }
    }
    ParsedDelta last = parser.finish();
    assembler.add(last);
    if (deltas) {
        deltas->push_back(std::move(last));
    }
    return assembler.message();
}

inline std::vector<std::string> split_at(std::string_view text, std::vector<size_t> cuts) {
    std::vector<std::string> chunks;
    size_t prev = 0;
    for (size_t cut : cuts) {
        chunks.emplace_back(text.substr(prev, cut - prev));
        prev = cut;
    }
    chunks.emplace_back(text.substr(prev));
    return chunks;
}

inline std::vector<std::string> random_chunks(std::string_view text, std::mt19937& rng,
                                              size_t max_cuts) {
    std::uniform_int_distribution<size_t> pos(0, text.size());
    std::uniform_int_distribution<size_t> count(1, max_cuts);
    std::vector<size_t> cuts(count(rng));
    for (size_t& cut : cuts) {
        cut = pos(rng);
    }
    std::sort(cuts.begin(), cuts.end());
    return split_at(text, cuts);
}

inline std::vector<std::string> byte_chunks(std::string_view text) {
    std::vector<std::string> chunks;
    for (char c : text) {
        chunks.emplace_back(1, c);
    }
    return chunks;
}

inline bool valid_utf8(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (len == 0 || i + len > s.size()) {
            return false;
        }
        for (size_t k = 1; k < len; ++k) {
            if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) {
                return false;
            }
        }
        i += len;
    }
    return true;
}

inline bool same_message(const ParsedMessage& a, const ParsedMessage& b) {
    if (a.content != b.content || a.reasoning_content != b.reasoning_content ||
        a.tool_calls.size() != b.tool_calls.size()) {
        return false;
    }
    for (size_t i = 0; i < a.tool_calls.size(); ++i) {
        const ToolCall& x = a.tool_calls[i];
        const ToolCall& y = b.tool_calls[i];
        if (x.index != y.index || x.name != y.name || x.arguments != y.arguments) {
            return false;
        }
    }
    return true;
}

// The key invariant: every single split point, 1-byte chunks and random multi-splits assemble
// to the non-streaming message, with reasoning streamed and not.
// `stride` > 1 tries every stride-th split point only (long texts, to keep the suite fast).
inline void expect_chunking_invariant(std::string_view text, OutputParserOptions options,
                                      int random_rounds = 40, size_t stride = 1) {
    const ParsedMessage expected = OutputParser::parse(text, options);
    for (bool stream_reasoning : {true, false}) {
        options.stream_reasoning = stream_reasoning;
        for (size_t cut = 0; cut <= text.size(); cut += stride) {
            ParsedMessage got = run_chunks(split_at(text, {cut}), options);
            ASSERT_TRUE(same_message(got, expected))
                << "split at " << cut << "\n got: " << describe(got)
                << "\nwant: " << describe(expected);
        }
        std::vector<ParsedDelta> deltas;
        ParsedMessage bytes = run_chunks(byte_chunks(text), options, &deltas);
        ASSERT_TRUE(same_message(bytes, expected))
            << "1-byte chunks\n got: " << describe(bytes) << "\nwant: " << describe(expected);
        if (valid_utf8(text)) {
            for (const ParsedDelta& d : deltas) {
                ASSERT_TRUE(valid_utf8(d.content) && valid_utf8(d.reasoning_content));
                for (const ToolCallDelta& item : d.tool_calls) {
                    ASSERT_TRUE(valid_utf8(item.arguments)) << item.arguments;
                }
            }
        }
        std::mt19937 rng(static_cast<unsigned>(text.size()));
        for (int round = 0; round < random_rounds; ++round) {
            std::vector<std::string> chunks = random_chunks(text, rng, 12);
            ParsedMessage got = run_chunks(chunks, options);
            ASSERT_TRUE(same_message(got, expected))
                << at_chunks(chunks) << "\n got: " << describe(got)
                << "\nwant: " << describe(expected);
        }
    }
}

}  // namespace dsserve::parsers::testing
