#include "tokenizer/pre_tokenizer.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/file.h"
#include "core/utf8.h"
#include "test_data.h"

namespace dsserve::tokenizer {
namespace {

std::vector<std::string> pieces_of(const PreTokenizer& pre, std::string_view text) {
    std::vector<Span> spans;
    SplitScratch scratch;
    pre.split(text, {0, text.size()}, spans, scratch);
    std::vector<std::string> out;
    for (const Span& s : spans) {
        out.emplace_back(text.substr(s.begin, s.end - s.begin));
    }
    return out;
}

std::vector<std::string> split_with(const std::string& onig_pattern, std::string_view text,
                                    SplitRegex::Behavior behavior) {
    const SplitRegex regex(translate_pattern(onig_pattern), behavior);
    std::vector<Span> spans;
    regex.split(text, {0, text.size()}, spans);
    std::vector<std::string> out;
    for (const Span& s : spans) {
        out.emplace_back(text.substr(s.begin, s.end - s.begin));
    }
    return out;
}

using Pieces = std::vector<std::string>;

const PreTokenizer& v32_pre_tokenizer() {
    static const PreTokenizer pre = PreTokenizer::from_json(
        nlohmann::json::parse(read_file(testing::v32_dir() / "tokenizer.json"))
            .at("pre_tokenizer"));
    return pre;
}

// Expected pieces are what HF's pre_tokenizer.pre_tokenize_str gives for these texts.
TEST(PreTokenizerTest, DeepSeekV32Pieces) {
    const PreTokenizer& pre = v32_pre_tokenizer();
    EXPECT_EQ(pre.num_splits(), 3u);
    EXPECT_EQ(pieces_of(pre, "Hello world 12345 中文かなカナ!!"),
              (Pieces{"Hello", " world", " ", "123", "45", " ", "中文かなカナ", "!!"}));
    EXPECT_EQ(pieces_of(pre, "a  \n\n  b\t\tc   "),
              (Pieces{"a", "  \n\n", " ", " b", "\t", "\tc", "   "}));
    EXPECT_EQ(pieces_of(pre, "x.y,z \"quoted\" (1+2)=3"),
              (Pieces{"x", ".y", ",z", " \"", "quoted", "\"", " (", "1", "+", "2", ")=", "3"}));
    // U+180E is not White_Space for HF (PCRE2's own \s would say it is).
    EXPECT_EQ(pieces_of(pre, " \u180e \u3000x"), (Pieces{" ", "\u180e", " ", "\u3000x"}));
    EXPECT_EQ(pieces_of(pre, ""), Pieces{});
}

TEST(PreTokenizerTest, SplitBehaviours) {
    using B = SplitRegex::Behavior;
    EXPECT_EQ(split_with("\\p{N}+", "ab12cd3", B::kIsolated), (Pieces{"ab", "12", "cd", "3"}));
    EXPECT_EQ(split_with("\\p{N}+", "ab12cd3", B::kRemoved), (Pieces{"ab", "cd"}));
    EXPECT_EQ(split_with("\\s+(?!\\S)", "a   b", B::kIsolated), (Pieces{"a", "  ", " b"}));
    EXPECT_EQ(split_with(".+", "ab\r\ncd", B::kIsolated), (Pieces{"ab\r", "\n", "cd"}));
    // Empty matches split the text between characters, as Oniguruma's iteration does.
    EXPECT_EQ(split_with("x*", "axé", B::kIsolated), (Pieces{"a", "x", "é"}));
}

TEST(PreTokenizerTest, TranslationRejectsUnknownConstructs) {
    for (const char* pattern :
         {"\\d+", "\\w", "^a", "a$", "[[:alpha:]]", "[a&&b]", "\\p{Lu}", "(?i)a", "(?<name>a)",
          "\\b", "[abc", "a\\", "a{,3}", "\\P{L}", "\\h"}) {
        EXPECT_THROW(translate_pattern(pattern), Error) << pattern;
    }
    EXPECT_EQ(translate_pattern("(?:a|b)(c)\\.\\-[x\\]]"), "(?:a|b)(c)\\.\\-[x\\]]");
    EXPECT_EQ(translate_pattern("\\v"), "\\x{0b}");
    EXPECT_EQ(translate_pattern("a.b[.]"), "a[^\\n]b[.]");
    EXPECT_EQ(translate_pattern("a{1,3}"), "a{1,3}");
}

TEST(PreTokenizerTest, RejectsUnsupportedConfigurations) {
    const auto split = [](const char* behavior) {
        return nlohmann::json{{"type", "Split"},
                              {"pattern", {{"Regex", "a"}}},
                              {"behavior", behavior},
                              {"invert", false}};
    };
    const nlohmann::json byte_level = {
        {"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};
    const auto sequence = [](std::vector<nlohmann::json> steps) {
        return nlohmann::json{{"type", "Sequence"}, {"pretokenizers", steps}};
    };
    EXPECT_NO_THROW(PreTokenizer::from_json(sequence({split("Isolated"), byte_level})));
    EXPECT_THROW(PreTokenizer::from_json(sequence({split("MergedWithNext"), byte_level})), Error);
    EXPECT_THROW(PreTokenizer::from_json(sequence({byte_level, split("Isolated")})), Error);
    EXPECT_THROW(PreTokenizer::from_json(sequence({split("Isolated")})), Error);
    auto with_regex = byte_level;
    with_regex["use_regex"] = true;
    EXPECT_THROW(PreTokenizer::from_json(with_regex), Error);
    EXPECT_THROW(PreTokenizer::from_json({{"type", "Whitespace"}}), Error);
    auto inverted = split("Isolated");
    inverted["invert"] = true;
    EXPECT_THROW(PreTokenizer::from_json(sequence({inverted, byte_level})), Error);
}

// All code points but the surrogates (and NUL), as UTF-8, with the code point at each offset.
struct AllCodePoints {
    std::string text;
    std::vector<std::uint32_t> at;  // byte offset -> code point, 0 inside a character

    AllCodePoints() {
        for (std::uint32_t c = 1; c < 0x110000; ++c) {
            if (c >= 0xD800 && c <= 0xDFFF) {
                continue;
            }
            at.resize(text.size() + 1, 0);
            at[text.size()] = c;
            utf8_append(text, c);
        }
        at.resize(text.size(), 0);
    }

    // Per code point: does a one-character pattern leave it out? (What a Removed split keeps.)
    std::vector<bool> outside(const char* onig_pattern) const {
        const SplitRegex regex(translate_pattern(onig_pattern), SplitRegex::Behavior::kRemoved);
        std::vector<Span> kept;
        regex.split(text, {0, text.size()}, kept);
        std::vector<bool> out(0x110000, false);
        for (const Span& s : kept) {
            for (std::size_t i = s.begin; i < s.end; ++i) {
                if (at[i] != 0) {
                    out[at[i]] = true;
                }
            }
        }
        return out;
    }
};

std::vector<bool> golden_class(const char* name) {
    std::vector<bool> out(0x110000, false);
    for (const auto& range : testing::golden("unicode_classes.json").at(name)) {
        for (auto c = range[0].get<std::uint32_t>(); c <= range[1].get<std::uint32_t>(); ++c) {
            out[c] = true;
        }
    }
    return out;
}

// Every code point, classified by the translated classes, against what HF's Oniguruma says
// (tests/golden/tokenizer/unicode_classes.json).
TEST(PreTokenizerTest, TranslatedClassesMatchOnigurumaOnEveryCodePoint) {
    const AllCodePoints all;
    const std::pair<const char*, const char*> cases[] = {{"L", "\\p{L}"},
                                                         {"N", "\\p{N}"},
                                                         {"P", "\\p{P}"},
                                                         {"S", "\\p{S}"},
                                                         {"M", "\\p{M}"},
                                                         {"White_Space", "\\s"},
                                                         {"White_Space", "[\\s]"},
                                                         {"not White_Space", "\\S"},
                                                         {"not White_Space", "[\\S]"}};
    for (const auto& [name, pattern] : cases) {
        const std::string_view class_name(name);
        const bool negated = class_name.starts_with("not ");
        const std::vector<bool> members = golden_class(negated ? name + 4 : name);
        const std::vector<bool> outside = all.outside(pattern);
        std::size_t mismatches = 0;
        for (std::uint32_t c = 1; c < 0x110000; ++c) {
            if (c >= 0xD800 && c <= 0xDFFF) {
                continue;
            }
            const bool expected = members[c] != negated;
            if (outside[c] == expected && ++mismatches <= 5) {
                ADD_FAILURE() << pattern << (expected ? " misses U+" : " wrongly holds U+")
                              << std::hex << c;
            }
        }
        EXPECT_EQ(mismatches, 0u) << pattern;
    }
}

}  // namespace
}  // namespace dsserve::tokenizer
