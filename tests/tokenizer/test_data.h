// Shared fixtures for the tokenizer tests: the DeepSeek-V3.2 tokenizer (loaded once per test
// binary) and the golden files made by tools/golden/make_tokenizer_golden.py.
#pragma once

#include <filesystem>
#include <string>

#include "core/json.h"
#include "tokenizer/tokenizer.h"

namespace dsserve::tokenizer::testing {

std::filesystem::path v32_dir();
const Tokenizer& v32();
// tests/golden/tokenizer/<name>, parsed.
const Json& golden(const std::string& name);
// A small tokenizer.json in V3.2's shape: its normalizer, pre-tokenizer, post-processor and
// decoder, the 256 byte symbols plus a few merges, and three added tokens (BOS 0 and EOS 1,
// special; <think> 2). Cheap to load many times in tests that edit the configuration.
nlohmann::json tiny_tokenizer_spec();

// The text of an encode.json case: "text", "bytes_hex" (raw bytes) or "file" (under data/).
std::string case_input(const Json& c);

}  // namespace dsserve::tokenizer::testing
