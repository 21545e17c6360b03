// Runtime values of the Jinja renderer, with Python semantics: what a chat template sees after
// transformers hands it plain JSON data (dicts, lists, str, int, float, bool, None) plus Jinja's
// own objects (Undefined, namespace(), loop, macros and bound methods).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "core/json.h"

namespace dsserve::chat::jinja {

class Value;
class Renderer;

struct ListData;
class DictData;
struct NamespaceData;
struct Function;
struct UndefinedData;
struct CallArgs;

class Value {
public:
    enum class Kind {
        kUndefined,
        kNone,
        kBool,
        kInt,
        kFloat,
        kString,
        kList,
        kDict,
        kNamespace,
        kFunction
    };

    Value();  // Undefined

    static Value undefined(std::string message, bool unsafe = false);
    static Value none() { return Value(Tag::kNone); }
    static Value boolean(bool b) { return Value(b); }
    static Value integer(std::int64_t i) { return Value(i); }
    static Value number(double f) { return Value(f); }
    static Value string(std::string s);
    static Value list(std::vector<Value> items, bool is_tuple = false);
    static Value dict(std::shared_ptr<const DictData> dict);
    static Value ns(std::shared_ptr<NamespaceData> ns);
    static Value function(std::shared_ptr<const Function> fn);

    Kind kind() const { return static_cast<Kind>(data_.index()); }
    bool is(Kind k) const { return kind() == k; }
    bool is_undefined() const { return is(Kind::kUndefined); }
    bool is_none() const { return is(Kind::kNone); }
    bool is_string() const { return is(Kind::kString); }
    // int, float or bool (bool is an int in Python).
    bool is_numeric() const { return is(Kind::kInt) || is(Kind::kFloat) || is(Kind::kBool); }
    bool is_sequence_like() const { return is(Kind::kList); }

    bool as_bool() const { return std::get<bool>(data_); }
    std::int64_t as_int() const;  // int or bool
    double as_float() const;      // int, bool or float
    const std::string& as_string() const { return *std::get<StrPtr>(data_); }
    const ListData& as_list() const { return *std::get<ListPtr>(data_); }
    const DictData& as_dict() const { return *std::get<DictPtr>(data_); }
    NamespaceData& as_namespace() const { return *std::get<NsPtr>(data_); }
    const Function& as_function() const { return *std::get<FnPtr>(data_); }
    const UndefinedData& as_undefined() const { return *std::get<UndefPtr>(data_); }

private:
    enum class Tag { kNone };
    using UndefPtr = std::shared_ptr<const UndefinedData>;
    using StrPtr = std::shared_ptr<const std::string>;
    using ListPtr = std::shared_ptr<const ListData>;
    using DictPtr = std::shared_ptr<const DictData>;
    using NsPtr = std::shared_ptr<NamespaceData>;
    using FnPtr = std::shared_ptr<const Function>;
    using Storage = std::variant<UndefPtr, std::monostate, bool, std::int64_t, double, StrPtr,
                                 ListPtr, DictPtr, NsPtr, FnPtr>;

    explicit Value(Tag) : data_(std::monostate{}) {}
    explicit Value(bool b) : data_(b) {}
    explicit Value(std::int64_t i) : data_(i) {}
    explicit Value(double f) : data_(f) {}
    explicit Value(Storage data) : data_(std::move(data)) {}

    Storage data_;
};

// The containers are defined after Value because they hold Values by value.
struct ListData {
    std::vector<Value> items;
    bool is_tuple = false;
};

// Insertion-ordered string-keyed map, like a Python dict built from JSON.
class DictData {
public:
    const Value* find(std::string_view key) const;
    void set(const std::string& key, Value value);
    const std::vector<std::pair<std::string, Value>>& entries() const { return entries_; }
    size_t size() const { return entries_.size(); }

private:
    std::vector<std::pair<std::string, Value>> entries_;
    std::unordered_map<std::string, size_t> index_;
};

// namespace() objects (assignable with {% set ns.x = ... %}) and the read-only `loop` object.
struct NamespaceData {
    DictData attrs;
    bool is_loop = false;
    // The loop object computes its attributes from the iterated items and the position.
    std::shared_ptr<const ListData> loop_items;
    std::size_t loop_index = 0;
};

struct CallArgs {
    std::vector<Value> positional;
    std::vector<std::pair<std::string, Value>> keyword;
};

// A callable: a global function, a macro, or a method bound to its receiver.
struct Function {
    std::string name;
    std::function<Value(Renderer&, CallArgs&)> call;
    bool is_macro = false;
};

// Jinja's Undefined: what a missing variable, attribute or item evaluates to. Printing it gives "",
// testing it gives false, iterating it gives nothing; arithmetic, attribute access and calls raise
// `message`. An attribute the sandbox forbids (list.append, ...) is an Undefined that is `unsafe`.
struct UndefinedData {
    std::string message;
    bool unsafe = false;
};

// Python's type name, as error messages print it ("str", "int", "NoneType", ...).
std::string type_name(const Value& value);

// Throws the Error an Undefined raises when it is used.
[[noreturn]] void raise_undefined(const Value& value);

// str(value): what {{ value }} prints. Undefined prints as "".
std::string to_str(const Value& value);
// repr(value), used inside printed lists and dicts.
std::string to_repr(const Value& value);
bool truthy(const Value& value);
// Python ==.
bool equals(const Value& a, const Value& b);
// Python <, <=, ... as a three-way result; throws Error when Python raises TypeError.
int compare(const Value& a, const Value& b);

Value from_json(const Json& json);
// JSON for tojson; throws Error for values json.dumps cannot serialize.
Json to_json(const Value& value);

}  // namespace dsserve::chat::jinja
