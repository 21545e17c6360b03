#include "tokenizer/pre_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <cctype>
#include <cstdint>
#include <utility>

#include "core/error.h"
#include "tokenizer/unicode_classes.h"
#include "tokenizer/utf8.h"

namespace dsserve::tokenizer {
namespace {

class PatternTranslator {
public:
    explicit PatternTranslator(std::string_view pattern) : in_(pattern) {}

    std::string run() {
        while (pos_ < in_.size()) {
            const char c = in_[pos_];
            if (in_class_) {
                class_char(c);
            } else {
                plain_char(c);
            }
        }
        DS_CHECK(!in_class_, "pre-tokenizer regex: unterminated character class in ", quoted());
        return out_;
    }

private:
    std::string quoted() const { return str_cat("'", in_, "'"); }

    void plain_char(char c) {
        switch (c) {
            case '\\':
                escape(false);
                return;
            case '[':
                ++pos_;
                out_ += '[';
                if (pos_ < in_.size() && in_[pos_] == '^') {
                    out_ += '^';
                    ++pos_;
                }
                DS_CHECK(pos_ < in_.size() && in_[pos_] != ']',
                         "pre-tokenizer regex: a class starting with ']' is ambiguous in ",
                         quoted());
                in_class_ = true;
                return;
            case '(':
                group_open();
                return;
            case '.':
                // Oniguruma's dot excludes only \n; PCRE2's depends on its newline setting.
                out_ += "[^\\n]";
                ++pos_;
                return;
            case '{':
                // Oniguruma reads {,n} as {0,n}; PCRE2 10.42 as the literal text.
                DS_CHECK(pos_ + 1 >= in_.size() || in_[pos_ + 1] != ',',
                         "pre-tokenizer regex: {,n} quantifiers are not supported in ", quoted());
                out_ += c;
                ++pos_;
                return;
            case '^':
            case '$':
                // Oniguruma's Ruby syntax makes these line anchors; PCRE2's are subject anchors.
                fail("pre-tokenizer regex: anchors ^ and $ are not supported in ", quoted());
            default:
                out_ += c;
                ++pos_;
        }
    }

    void class_char(char c) {
        if (c == '\\') {
            escape(true);
            return;
        }
        // Oniguruma nests classes and has && intersections; PCRE2 reads both as literals.
        DS_CHECK(c != '[', "pre-tokenizer regex: nested classes are not supported in ", quoted());
        DS_CHECK(!(c == '&' && pos_ + 1 < in_.size() && in_[pos_ + 1] == '&'),
                 "pre-tokenizer regex: class intersection is not supported in ", quoted());
        if (c == ']') {
            in_class_ = false;
        }
        out_ += c;
        ++pos_;
    }

    void group_open() {
        static constexpr std::string_view kAllowed[] = {"(?:", "(?=", "(?!", "(?<=", "(?<!"};
        const std::string_view rest = in_.substr(pos_);
        if (rest.size() < 2 || rest[1] != '?') {
            out_ += '(';  // a capturing group; captures do not change what matches
            ++pos_;
            return;
        }
        for (std::string_view prefix : kAllowed) {
            if (rest.starts_with(prefix)) {
                out_ += prefix;
                pos_ += prefix.size();
                return;
            }
        }
        fail("pre-tokenizer regex: unsupported group syntax in ", quoted());
    }

    // Appends `body` as a class of its own, or into the class being written.
    void emit_class(const std::string& body, bool negated, bool inside) {
        if (inside) {
            DS_ASSERT(!negated);
            out_ += body;
        } else {
            out_ += negated ? "[^" : "[";
            out_ += body;
            out_ += ']';
        }
    }

    void escape(bool inside) {
        DS_CHECK(pos_ + 1 < in_.size(), "pre-tokenizer regex: trailing backslash in ", quoted());
        const char e = in_[pos_ + 1];
        pos_ += 2;
        switch (e) {
            case 'p': {
                DS_CHECK(pos_ < in_.size() && in_[pos_] == '{',
                         "pre-tokenizer regex: expected \\p{...} in ", quoted());
                const std::size_t close = in_.find('}', pos_);
                DS_CHECK(close != std::string_view::npos,
                         "pre-tokenizer regex: unterminated \\p{ in ", quoted());
                const std::string_view name = in_.substr(pos_ + 1, close - pos_ - 1);
                pos_ = close + 1;
                emit_class(property_class_body(name), false, inside);
                return;
            }
            case 's':
                emit_class(white_space_class_body(), false, inside);
                return;
            case 'S':
                if (inside) {
                    out_ += non_white_space_class_body();
                } else {
                    emit_class(white_space_class_body(), true, false);
                }
                return;
            case 'r':
            case 'n':
            case 't':
            case 'f':
                out_ += '\\';
                out_ += e;
                return;
            case 'v':
                out_ += "\\x{0b}";  // Oniguruma: vertical tab; PCRE2: any vertical space
                return;
            default:
                break;
        }
        const auto u = static_cast<unsigned char>(e);
        // Escaped ASCII punctuation is a literal in both engines.
        DS_CHECK(u < 0x80 && u > 0x20 && !std::isalnum(u),
                 "pre-tokenizer regex: unsupported escape \\", e, " in ", quoted());
        out_ += '\\';
        out_ += e;
    }

    std::string_view in_;
    std::size_t pos_ = 0;
    bool in_class_ = false;
    std::string out_;
};

pcre2_code* as_code(void* code) {
    return static_cast<pcre2_code*>(code);
}

// Per-thread matching state shared by every pattern: the patterns have no captures, so one
// ovector pair is enough, and a JIT stack larger than the 32 KiB default lets lookaheads run
// over long pieces.
class MatchState {
public:
    MatchState()
        : data_(pcre2_match_data_create(1, nullptr)),
          context_(pcre2_match_context_create(nullptr)),
          stack_(pcre2_jit_stack_create(64 * 1024, 8 * 1024 * 1024, nullptr)) {
        DS_ASSERT(data_ && context_ && stack_, "out of memory creating PCRE2 match state");
        pcre2_jit_stack_assign(context_, nullptr, stack_);
    }
    ~MatchState() {
        pcre2_jit_stack_free(stack_);
        pcre2_match_context_free(context_);
        pcre2_match_data_free(data_);
    }
    MatchState(const MatchState&) = delete;
    MatchState& operator=(const MatchState&) = delete;

    pcre2_match_data* data() { return data_; }
    pcre2_match_context* context() { return context_; }

    static MatchState& for_this_thread() {
        thread_local MatchState state;
        return state;
    }

private:
    pcre2_match_data* data_;
    pcre2_match_context* context_;
    pcre2_jit_stack* stack_;
};

SplitRegex::Behavior parse_behavior(const std::string& name) {
    if (name == "Isolated") {
        return SplitRegex::Behavior::kIsolated;
    }
    if (name == "Removed") {
        return SplitRegex::Behavior::kRemoved;
    }
    fail("pre-tokenizer Split: behavior '", name, "' is not supported (Isolated, Removed)");
}

std::string quote_literal(std::string_view literal) {
    std::string out;
    for (char c : literal) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x80 && !std::isalnum(u)) {
            out += '\\';
        }
        out += c;
    }
    return out;
}

SplitRegex make_split(const nlohmann::json& j) {
    DS_CHECK(!j.value("invert", false), "pre-tokenizer Split: invert is not supported");
    const auto& pattern = j.at("pattern");
    std::string pcre2_pattern;
    if (pattern.contains("Regex")) {
        pcre2_pattern = translate_pattern(pattern.at("Regex").get<std::string>());
    } else if (pattern.contains("String")) {
        pcre2_pattern = quote_literal(pattern.at("String").get<std::string>());
    } else {
        fail("pre-tokenizer Split: pattern needs Regex or String");
    }
    return SplitRegex(pcre2_pattern, parse_behavior(j.at("behavior").get<std::string>()));
}

void check_byte_level(const nlohmann::json& j) {
    // With use_regex the GPT-2 pattern would split again; with add_prefix_space every piece
    // would gain a leading space. This tokenizer.json uses neither.
    DS_CHECK(!j.value("use_regex", true),
             "pre-tokenizer ByteLevel: use_regex=true is not supported");
    DS_CHECK(!j.value("add_prefix_space", true),
             "pre-tokenizer ByteLevel: add_prefix_space=true is not supported");
}

}  // namespace

std::string translate_pattern(std::string_view onig_pattern) {
    return PatternTranslator(onig_pattern).run();
}

SplitRegex::SplitRegex(const std::string& pcre2_pattern, Behavior behavior) : behavior_(behavior) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code* code =
        pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pcre2_pattern.data()), pcre2_pattern.size(),
                      PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
    if (code == nullptr) {
        std::array<PCRE2_UCHAR, 256> message{};
        pcre2_get_error_message(error, message.data(), message.size());
        fail("pre-tokenizer regex does not compile at offset ", offset, ": ",
             reinterpret_cast<const char*>(message.data()));
    }
    const int jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    if (jit != 0) {
        pcre2_code_free(code);
        fail("pre-tokenizer regex: PCRE2 JIT compilation failed (", jit, ")");
    }
    code_ = code;
}

SplitRegex::~SplitRegex() {
    pcre2_code_free(as_code(code_));
}

SplitRegex::SplitRegex(SplitRegex&& other) noexcept
    : code_(other.code_), behavior_(other.behavior_) {
    other.code_ = nullptr;
}

SplitRegex& SplitRegex::operator=(SplitRegex&& other) noexcept {
    if (this != &other) {
        pcre2_code_free(as_code(code_));
        code_ = other.code_;
        behavior_ = other.behavior_;
        other.code_ = nullptr;
    }
    return *this;
}

void SplitRegex::split(std::string_view text, Span piece, std::vector<Span>& out) const {
    MatchState& state = MatchState::for_this_thread();
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data() + piece.begin);
    const std::size_t length = piece.end - piece.begin;
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state.data());
    auto emit = [&](std::size_t begin, std::size_t end) {
        if (begin != end) {
            out.push_back({piece.begin + begin, piece.begin + end});
        }
    };
    // The iteration of Rust's onig crate (FindMatches), which HF uses: search from the end of
    // the last match; an empty match right where the last match ended is skipped by moving one
    // character on. Gaps between matches are pieces too.
    std::size_t gap_begin = 0;
    std::size_t search = 0;
    std::size_t last_match_end = SIZE_MAX;
    while (search <= length) {
        const int rc = pcre2_jit_match(as_code(code_), subject, length, search, 0, state.data(),
                                       state.context());
        if (rc == PCRE2_ERROR_NOMATCH) {
            break;
        }
        DS_CHECK(rc >= 0, "pre-tokenizer regex failed on a ", length, "-byte piece (PCRE2 error ",
                 rc, ")");
        const std::size_t begin = ovector[0];
        const std::size_t end = ovector[1];
        if (begin == end && end == last_match_end) {
            if (end == length) {
                break;
            }
            search = end + utf8_sequence_length(subject[end]);
            continue;
        }
        emit(gap_begin, begin);
        if (behavior_ == Behavior::kIsolated) {
            emit(begin, end);
        }
        gap_begin = end;
        last_match_end = end;
        search = end;
        if (begin == end) {
            if (end == length) {
                break;
            }
            search = end + utf8_sequence_length(subject[end]);
        }
    }
    emit(gap_begin, length);
}

PreTokenizer PreTokenizer::from_json(const nlohmann::json& config) {
    DS_CHECK(config.is_object(), "tokenizer.json: pre_tokenizer must be an object");
    std::vector<nlohmann::json> steps;
    const std::string type = config.at("type").get<std::string>();
    if (type == "Sequence") {
        for (const auto& step : config.at("pretokenizers")) {
            steps.push_back(step);
        }
    } else {
        steps.push_back(config);
    }
    PreTokenizer result;
    bool byte_level = false;
    for (const auto& step : steps) {
        const std::string step_type = step.at("type").get<std::string>();
        DS_CHECK(!byte_level, "pre-tokenizer: ByteLevel must be the last step");
        if (step_type == "Split") {
            result.splits_.push_back(make_split(step));
        } else if (step_type == "ByteLevel") {
            check_byte_level(step);
            byte_level = true;
        } else {
            fail("pre-tokenizer '", step_type, "' is not supported (Sequence, Split, ByteLevel)");
        }
    }
    DS_CHECK(byte_level, "pre-tokenizer: a byte-level BPE needs a final ByteLevel step");
    return result;
}

void PreTokenizer::split(std::string_view text, Span piece, std::vector<Span>& out,
                         SplitScratch& scratch) const {
    if (splits_.empty()) {
        if (piece.begin != piece.end) {
            out.push_back(piece);
        }
        return;
    }
    // Each Split runs over every piece of the one before: ping-pong between the two scratch
    // buffers and let the last level write straight into `out`.
    std::vector<Span>* current = &scratch.first;
    std::vector<Span>* next = &scratch.second;
    current->clear();
    current->push_back(piece);
    for (std::size_t level = 0; level < splits_.size(); ++level) {
        const bool last = level + 1 == splits_.size();
        std::vector<Span>& target = last ? out : *next;
        if (!last) {
            next->clear();
        }
        for (const Span& p : *current) {
            splits_[level].split(text, p, target);
        }
        std::swap(current, next);
    }
}

}  // namespace dsserve::tokenizer
