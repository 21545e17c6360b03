// Tool-call arguments are the string Python produces with json.dumps(value, ensure_ascii=False):
// ", " and ": " separators, non-ASCII kept raw, floats in repr() form ("1e-05", "100000.0"),
// integers exact at any size, NaN/Infinity spelled as Python spells them. Clients compare these
// strings, and the reference parsers (SGLang's, DeepSeek's encoder) produce exactly this form, so
// dsserve writes it byte for byte instead of using a generic JSON dumper.
//
// JsonNormalizer reads JSON text incrementally and writes the normalized form as far as it is
// final, which is what lets tool-call arguments stream while staying equal to the non-streamed
// string. Differences from json.loads + json.dumps, all on input no model should produce:
//   - a repeated object key keeps its first value (Python keeps the last value at the first
//     key's position); a streamed prefix cannot take back the first value;
//   - a lone UTF-16 surrogate escape stays escaped ("\udc00"); Python would keep an unencodable
//     lone surrogate in the string;
//   - integers are not limited to 4300 digits.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace dsserve::parsers {

class JsonNormalizer {
public:
    // object_only: anything but an object at top level is an error before any output is written.
    explicit JsonNormalizer(bool object_only = false) : object_only_(object_only) {}

    void push(std::string_view text);
    // End of input: a value cut short is closed (open string quoted, containers closed); a number
    // or literal cut short, or an object key without a value, is left out.
    void finish();

    // Normalized text written so far. Before finish() it only grows and is a prefix of the final
    // output for every possible continuation of the input.
    const std::string& output() const { return out_; }
    // After finish(): the input was exactly one JSON value, with only whitespace around it.
    bool valid() const { return finished_ && !error_ && done_; }

private:
    enum class Expect {
        kValue,         // a value must come next (top level, after ':' or ',' in an array)
        kValueOrClose,  // just after '['
        kKeyOrClose,    // just after '{'
        kKey,           // after ',' in an object
        kColon,         // after a key
        kCommaOrClose,  // after a value inside a container
        kEnd,           // top-level value complete: only whitespace may follow
    };
    enum class Token { kNone, kString, kKey, kNumber, kLiteral };
    struct Frame {
        bool is_object = false;
        size_t count = 0;  // elements written so far (decides the ", " separator)
        std::unordered_set<std::string> keys;
    };

    void consume(char c);
    void start_value(char c);
    void begin_output();  // writes the pending separator/key of the value that starts now
    void end_value();
    void fail() { error_ = true; }
    void write(std::string_view s);
    void close_container();
    void consume_string_byte(char c);
    void emit_code_point(char32_t cp);
    void finish_number();
    void literal_byte(char c);

    bool object_only_;
    bool error_ = false;
    bool finished_ = false;
    bool done_ = false;  // top-level value complete
    Expect expect_ = Expect::kValue;
    Token token_ = Token::kNone;
    std::vector<Frame> stack_;
    std::string out_;
    std::string key_;              // escaped key of the next value, written when the value starts
    std::string lexeme_;           // number or literal being read
    std::string escape_;           // escape sequence being read, starting at the backslash
    char32_t high_surrogate_ = 0;  // a \uD800..\uDBFF waiting for its low half
    bool key_repeated_ = false;    // the key just read repeats an earlier key of its object
    // Stack depth at which a repeated key's value started: everything below it is parsed and
    // dropped. -1 when nothing is muted.
    long mute_depth_ = -1;
};

// json.dumps(json.loads(text), ensure_ascii=False), or false when `text` is not one JSON value
// (surrounding JSON whitespace allowed).
bool python_json_dumps(std::string_view text, std::string* out);

}  // namespace dsserve::parsers
