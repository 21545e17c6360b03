#include "parsers/dsml_tool_parser.h"

#include <algorithm>
#include <utility>

#include "core/error.h"
#include "core/pyjson.h"
#include "parsers/python_json.h"
#include "parsers/text.h"

namespace dsserve::parsers {
namespace {

constexpr std::string_view kBlockOpen = "<｜DSML｜function_calls>";
constexpr std::string_view kBlockClose = "</｜DSML｜function_calls>";
constexpr std::string_view kInvokeStart = "<｜DSML｜invoke";
constexpr std::string_view kInvokeClose = "</｜DSML｜invoke>";
constexpr std::string_view kParameterStart = "<｜DSML｜parameter";
constexpr std::string_view kParameterClose = "</｜DSML｜parameter>";

// Longest attribute value accepted. SGLang's pattern ([^"]+) has no bound; one keeps a stray
// quote from making the parser hold back the rest of the output as a possible tag.
constexpr size_t kMaxAttributeBytes = 256;

// Longest tag accepted; only runs of whitespace between attributes can make one this long.
constexpr size_t kMaxTagBytes = 1024;

enum class Match { kNo, kPartial, kYes };

bool is_tag_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Matches the pieces of a tag left to right. kPartial: the text ended while it still matched.
class TagScanner {
public:
    explicit TagScanner(std::string_view text) : text_(text) {}

    Match literal(std::string_view s) {
        size_t n = std::min(s.size(), text_.size() - pos_);
        if (text_.substr(pos_, n) != s.substr(0, n)) {
            return Match::kNo;
        }
        if (n < s.size()) {
            return Match::kPartial;
        }
        pos_ += n;
        return Match::kYes;
    }
    Match spaces(bool required) {
        size_t start = pos_;
        while (pos_ < text_.size() && is_tag_space(text_[pos_])) {
            ++pos_;
        }
        if (pos_ == text_.size()) {
            return Match::kPartial;
        }
        return (required && pos_ == start) ? Match::kNo : Match::kYes;
    }
    // `name="value"`: the attribute name, '=', and a non-empty quoted value.
    Match attribute(std::string_view name, std::string* value) {
        Match m = literal(name);
        if (m == Match::kYes) {
            m = literal("=\"");
        }
        if (m != Match::kYes) {
            return m;
        }
        size_t end = text_.find('"', pos_);
        size_t length = (end == std::string_view::npos ? text_.size() : end) - pos_;
        if (length > kMaxAttributeBytes) {
            return Match::kNo;
        }
        if (end == std::string_view::npos) {
            return Match::kPartial;
        }
        if (length == 0) {
            return Match::kNo;
        }
        value->assign(text_.substr(pos_, length));
        pos_ = end + 1;
        return Match::kYes;
    }
    size_t pos() const { return pos_; }
    bool at_end() const { return pos_ == text_.size(); }
    char peek() const { return text_[pos_]; }

private:
    std::string_view text_;
    size_t pos_ = 0;
};

// Runs the steps until one does not match; returns that one's result.
template <typename... Steps>
Match in_order(Steps... steps) {
    Match m = Match::kYes;
    ((m = (m == Match::kYes ? steps() : m)), ...);
    return m;
}

// A partial tag is all of `text`; either way a tag longer than kMaxTagBytes is no tag, so a
// flood of whitespace after `<｜DSML｜invoke` is not held back (and re-scanned) without end.
Match bounded(Match m, std::string_view text, size_t matched) {
    size_t length = m == Match::kPartial ? text.size() : matched;
    return (m != Match::kNo && length > kMaxTagBytes) ? Match::kNo : m;
}

// <｜DSML｜invoke name="N"> or <｜DSML｜invoke name="N"/>, whitespace as in SGLang's pattern.
Match match_invoke(std::string_view text, size_t* length, std::string* name, bool* self_closing) {
    TagScanner scan(text);
    Match m =
        in_order([&] { return scan.literal(kInvokeStart); }, [&] { return scan.spaces(true); },
                 [&] { return scan.attribute("name", name); }, [&] { return scan.spaces(false); });
    if (m != Match::kYes) {
        return bounded(m, text, scan.pos());
    }
    *self_closing = scan.peek() == '/';
    m = scan.literal(*self_closing ? "/>" : ">");
    *length = scan.pos();
    return bounded(m, text, scan.pos());
}

// <｜DSML｜parameter name="K" string="true|false">
Match match_parameter(std::string_view text, size_t* length, std::string* name,
                      std::string* string_attr) {
    TagScanner scan(text);
    Match m =
        in_order([&] { return scan.literal(kParameterStart); }, [&] { return scan.spaces(true); },
                 [&] { return scan.attribute("name", name); }, [&] { return scan.spaces(true); },
                 [&] { return scan.attribute("string", string_attr); },
                 [&] { return scan.spaces(false); }, [&] { return scan.literal(">"); });
    *length = scan.pos();
    return bounded(m, text, scan.pos());
}

}  // namespace

// ---- DsmlArguments ---------------------------------------------------------------------------

std::string DsmlArguments::push(std::string_view body) {
    if (!opened_) {
        out_ += '{';
        opened_ = true;
    }
    buf_ += body;
    size_t pos = 0;
    for (;;) {
        std::string_view rest = std::string_view(buf_).substr(pos);
        if (!in_value_) {
            size_t found = rest.find(kParameterStart);
            if (found == std::string_view::npos) {
                pos = buf_.size() - partial_marker_suffix(rest, {kParameterStart});
                break;
            }
            size_t length = 0;
            std::string name;
            std::string string_attr;
            Match m = match_parameter(rest.substr(found), &length, &name, &string_attr);
            if (m == Match::kPartial) {
                pos += found;
                break;
            }
            if (m == Match::kNo) {
                pos += found + 1;
                continue;
            }
            pos += found + length;
            open_parameter(name, string_attr == "true");
            continue;
        }
        size_t found = rest.find(kParameterClose);
        if (found == std::string_view::npos) {
            size_t take = rest.size() - partial_marker_suffix(rest, {kParameterClose});
            value_.append(rest.substr(0, take));
            pos += take;
            stream_value();
            break;
        }
        value_.append(rest.substr(0, found));
        pos += found + kParameterClose.size();
        close_parameter();
    }
    buf_.erase(0, pos);
    return std::exchange(out_, std::string());
}

std::string DsmlArguments::finish() {
    if (!opened_) {
        out_ += '{';
        opened_ = true;
    }
    if (in_value_) {
        // The body ended inside a value: bytes held as a possible closing tag belong to it.
        value_ += buf_;
        close_parameter();
    }
    buf_.clear();
    out_ += '}';
    return std::exchange(out_, std::string());
}

void DsmlArguments::open_parameter(std::string_view name, bool is_string) {
    in_value_ = true;
    is_string_ = is_string;
    repeated_ = !keys_.insert(std::string(name)).second;
    value_.clear();
    value_started_ = false;
    value_start_ = 0;
    streamed_end_ = 0;
    if (repeated_) {
        return;
    }
    if (written_++ > 0) {
        out_ += ", ";
    }
    out_ += '"';
    py_json_append_escaped(out_, name, /*ensure_ascii=*/false);
    out_ += "\": ";
    if (is_string_) {
        out_ += '"';
    }
}

// A string value is final up to its last non-whitespace character (trailing whitespace may be
// stripped later) and never ends inside a UTF-8 sequence (the rest of the character may be
// whitespace).
void DsmlArguments::stream_value() {
    if (!is_string_ || repeated_) {
        return;
    }
    std::string_view value(value_.data(), utf8_complete_prefix(value_));
    if (!value_started_) {
        size_t lead = leading_space_bytes(value);
        if (lead == value.size()) {
            return;
        }
        value_started_ = true;
        value_start_ = lead;
        streamed_end_ = lead;
    }
    size_t end = value.size() - trailing_space_bytes(value);
    if (end > streamed_end_) {
        py_json_append_escaped(out_, value.substr(streamed_end_, end - streamed_end_),
                               /*ensure_ascii=*/false);
        streamed_end_ = end;
    }
}

void DsmlArguments::close_parameter() {
    in_value_ = false;
    if (repeated_) {
        return;
    }
    std::string_view stripped = python_strip(value_);
    if (is_string_) {
        auto begin = static_cast<size_t>(stripped.data() - value_.data());
        size_t end = begin + stripped.size();
        size_t from = begin;
        if (value_started_) {
            DS_ASSERT(value_start_ == begin && streamed_end_ <= end, "streamed [", value_start_,
                      ", ", streamed_end_, ") outside the stripped value [", begin, ", ", end, ")");
            from = streamed_end_;
        }
        py_json_append_escaped(out_, std::string_view(value_).substr(from, end - from),
                               /*ensure_ascii=*/false);
        out_ += '"';
        return;
    }
    std::string json;
    if (python_json_dumps(stripped, &json)) {
        out_ += json;
    } else {
        out_ += '"';
        py_json_append_escaped(out_, stripped, /*ensure_ascii=*/false);
        out_ += '"';
    }
}

// ---- DsmlToolParser --------------------------------------------------------------------------

DsmlToolParser::DsmlToolParser(std::vector<std::string> known_tools)
    : BlockToolParser({kBlockOpen, kBlockClose, kInvokeClose, kParameterClose},
                      std::move(known_tools)) {}

size_t DsmlToolParser::parse_block(std::string_view text, bool* closed) {
    size_t pos = 0;
    while (pos < text.size()) {
        std::string_view rest = text.substr(pos);
        size_t which = 0;
        if (state_ == State::kBetween) {
            // Between invokes only an invoke tag or the block's end means anything.
            size_t found = find_first_marker(rest, 0, {kInvokeStart, kBlockClose}, &which);
            if (found == std::string_view::npos) {
                return text.size() - partial_marker_suffix(rest, {kInvokeStart, kBlockClose});
            }
            if (which == 1) {
                *closed = true;
                return pos + found + kBlockClose.size();
            }
            size_t length = 0;
            std::string name;
            bool self_closing = false;
            Match m = match_invoke(rest.substr(found), &length, &name, &self_closing);
            if (m == Match::kPartial) {
                return pos + found;
            }
            if (m == Match::kNo) {
                pos += found + 1;
                continue;
            }
            pos += found + length;
            begin_call(name);
            if (self_closing) {
                call_arguments("{}");
                end_call();
                continue;
            }
            state_ = State::kBody;
            body_ = Body::kUndecided;
            json_body_.clear();
            arguments_ = DsmlArguments();
            continue;
        }
        // Inside an invoke: the body runs to `</｜DSML｜invoke>` (or, malformed, the block's end).
        size_t found = find_first_marker(rest, 0, {kInvokeClose, kBlockClose}, &which);
        if (found == std::string_view::npos) {
            size_t take = rest.size() - partial_marker_suffix(rest, {kInvokeClose, kBlockClose});
            feed_body(rest.substr(0, take));
            return pos + take;
        }
        feed_body(rest.substr(0, found));
        end_invoke();
        if (which == 1) {
            *closed = true;
            return pos + found + kBlockClose.size();
        }
        pos += found + kInvokeClose.size();
    }
    return pos;
}

void DsmlToolParser::feed_body(std::string_view text) {
    if (body_ == Body::kUndecided) {
        size_t i = 0;
        while (i < text.size() && is_tag_space(text[i])) {
            ++i;
        }
        text.remove_prefix(i);
        if (text.empty()) {
            return;
        }
        // A body starting with '{' may be a JSON object (known only at its end); anything else
        // is parameter tags, which stream.
        body_ = text.front() == '{' ? Body::kJson : Body::kParameters;
    }
    if (body_ == Body::kJson) {
        json_body_ += text;
    } else {
        call_arguments(arguments_.push(text));
    }
}

void DsmlToolParser::end_invoke() {
    switch (body_) {
        case Body::kUndecided:
            call_arguments("{}");
            break;
        case Body::kParameters:
            call_arguments(arguments_.finish());
            break;
        case Body::kJson: {
            std::string_view stripped = python_strip(json_body_);
            std::string json;
            if (stripped.ends_with('}') && python_json_dumps(stripped, &json) &&
                json.starts_with('{')) {
                call_arguments(json);
            } else {
                DsmlArguments from_tags;
                std::string arguments = from_tags.push(json_body_);
                arguments += from_tags.finish();
                call_arguments(arguments);
            }
            break;
        }
    }
    end_call();
    state_ = State::kBetween;
}

void DsmlToolParser::finish_block(std::string_view rest) {
    if (state_ == State::kBody) {
        // Bytes held as a possible closing tag never became one: they are body text.
        feed_body(rest);
        end_invoke();
    }
}

}  // namespace dsserve::parsers
