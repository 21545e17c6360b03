#include "chat/jinja/value.h"

#include <cmath>

#include "chat/jinja/pystring.h"
#include "core/error.h"
#include "core/pyjson.h"

namespace dsserve::chat::jinja {

const Value* DictData::find(std::string_view key) const {
    const auto it = index_.find(std::string(key));
    return it == index_.end() ? nullptr : &entries_[it->second].second;
}

void DictData::set(const std::string& key, Value value) {
    const auto it = index_.find(key);
    if (it != index_.end()) {
        entries_[it->second].second = std::move(value);
        return;
    }
    index_.emplace(key, entries_.size());
    entries_.emplace_back(key, std::move(value));
}

Value::Value() {
    static const UndefPtr kPlain = std::make_shared<const UndefinedData>();
    data_ = kPlain;
}

Value Value::undefined(std::string message, bool unsafe) {
    return Value(
        Storage(std::make_shared<const UndefinedData>(UndefinedData{std::move(message), unsafe})));
}

Value Value::string(std::string s) {
    return Value(Storage(std::make_shared<const std::string>(std::move(s))));
}

Value Value::list(std::vector<Value> items, bool is_tuple) {
    return Value(Storage(std::make_shared<const ListData>(ListData{std::move(items), is_tuple})));
}

Value Value::dict(std::shared_ptr<const DictData> dict) {
    return Value(Storage(std::move(dict)));
}

Value Value::ns(std::shared_ptr<NamespaceData> ns) {
    return Value(Storage(std::move(ns)));
}

Value Value::function(std::shared_ptr<const Function> fn) {
    return Value(Storage(std::move(fn)));
}

std::int64_t Value::as_int() const {
    if (is(Kind::kBool)) {
        return as_bool() ? 1 : 0;
    }
    return std::get<std::int64_t>(data_);
}

double Value::as_float() const {
    if (is(Kind::kFloat)) {
        return std::get<double>(data_);
    }
    return static_cast<double>(as_int());
}

std::string type_name(const Value& value) {
    switch (value.kind()) {
        case Value::Kind::kUndefined:
            return "Undefined";
        case Value::Kind::kNone:
            return "NoneType";
        case Value::Kind::kBool:
            return "bool";
        case Value::Kind::kInt:
            return "int";
        case Value::Kind::kFloat:
            return "float";
        case Value::Kind::kString:
            return "str";
        case Value::Kind::kList:
            return value.as_list().is_tuple ? "tuple" : "list";
        case Value::Kind::kDict:
            return "dict";
        case Value::Kind::kNamespace:
            return value.as_namespace().is_loop ? "LoopContext" : "Namespace";
        case Value::Kind::kFunction:
            return "function";
    }
    return "object";
}

void raise_undefined(const Value& value) {
    const auto& data = value.as_undefined();
    fail(data.message.empty() ? std::string("value is undefined") : data.message);
}

namespace {

std::string float_str(double f) {
    if (std::isnan(f)) {
        return "nan";
    }
    if (std::isinf(f)) {
        return f > 0 ? "inf" : "-inf";
    }
    return py_float_repr(f);
}

std::string container_str(const Value& value) {
    std::string out;
    if (value.is(Value::Kind::kList)) {
        const auto& list = value.as_list();
        out += list.is_tuple ? '(' : '[';
        for (size_t i = 0; i < list.items.size(); ++i) {
            if (i > 0) {
                out += ", ";
            }
            out += to_repr(list.items[i]);
        }
        if (list.is_tuple && list.items.size() == 1) {
            out += ',';
        }
        out += list.is_tuple ? ')' : ']';
        return out;
    }
    const DictData& dict =
        value.is(Value::Kind::kDict) ? value.as_dict() : value.as_namespace().attrs;
    out += '{';
    bool first = true;
    for (const auto& [key, item] : dict.entries()) {
        if (!first) {
            out += ", ";
        }
        first = false;
        out += py_str_repr(key);
        out += ": ";
        out += to_repr(item);
    }
    out += '}';
    return out;
}

}  // namespace

std::string to_str(const Value& value) {
    switch (value.kind()) {
        case Value::Kind::kUndefined:
            return "";
        case Value::Kind::kNone:
            return "None";
        case Value::Kind::kBool:
            return value.as_bool() ? "True" : "False";
        case Value::Kind::kInt:
            return std::to_string(value.as_int());
        case Value::Kind::kFloat:
            return float_str(value.as_float());
        case Value::Kind::kString:
            return value.as_string();
        case Value::Kind::kList:
        case Value::Kind::kDict:
            return container_str(value);
        case Value::Kind::kNamespace:
            return value.as_namespace().is_loop ? "<LoopContext>"
                                                : "<Namespace " + container_str(value) + ">";
        case Value::Kind::kFunction:
            return value.as_function().is_macro
                       ? "<Macro '" + value.as_function().name + "'>"
                       : "<built-in function " + value.as_function().name + ">";
    }
    return "";
}

std::string to_repr(const Value& value) {
    if (value.is_string()) {
        return py_str_repr(value.as_string());
    }
    if (value.is_undefined()) {
        return "Undefined";
    }
    return to_str(value);
}

bool truthy(const Value& value) {
    switch (value.kind()) {
        case Value::Kind::kUndefined:
        case Value::Kind::kNone:
            return false;
        case Value::Kind::kBool:
            return value.as_bool();
        case Value::Kind::kInt:
            return value.as_int() != 0;
        case Value::Kind::kFloat:
            return value.as_float() != 0.0;
        case Value::Kind::kString:
            return !value.as_string().empty();
        case Value::Kind::kList:
            return !value.as_list().items.empty();
        case Value::Kind::kDict:
            return value.as_dict().size() != 0;
        case Value::Kind::kNamespace:
        case Value::Kind::kFunction:
            return true;
    }
    return true;
}

bool equals(const Value& a, const Value& b) {
    if (a.is_numeric() && b.is_numeric()) {
        if (a.is(Value::Kind::kFloat) || b.is(Value::Kind::kFloat)) {
            return a.as_float() == b.as_float();
        }
        return a.as_int() == b.as_int();
    }
    if (a.kind() != b.kind()) {
        return false;
    }
    switch (a.kind()) {
        case Value::Kind::kUndefined:
        case Value::Kind::kNone:
            return true;
        case Value::Kind::kString:
            return a.as_string() == b.as_string();
        case Value::Kind::kList: {
            const auto& x = a.as_list();
            const auto& y = b.as_list();
            if (x.is_tuple != y.is_tuple || x.items.size() != y.items.size()) {
                return false;
            }
            for (size_t i = 0; i < x.items.size(); ++i) {
                if (!equals(x.items[i], y.items[i])) {
                    return false;
                }
            }
            return true;
        }
        case Value::Kind::kDict: {
            const auto& x = a.as_dict();
            const auto& y = b.as_dict();
            if (x.size() != y.size()) {
                return false;
            }
            for (const auto& [key, item] : x.entries()) {
                const Value* other = y.find(key);
                if (other == nullptr || !equals(item, *other)) {
                    return false;
                }
            }
            return true;
        }
        case Value::Kind::kNamespace:
            return &a.as_namespace() == &b.as_namespace();
        case Value::Kind::kFunction:
            return &a.as_function() == &b.as_function();
        default:
            return false;
    }
}

int compare(const Value& a, const Value& b) {
    if (a.is_undefined()) {
        raise_undefined(a);
    }
    if (b.is_undefined()) {
        raise_undefined(b);
    }
    if (a.is_numeric() && b.is_numeric()) {
        if (a.is(Value::Kind::kFloat) || b.is(Value::Kind::kFloat)) {
            const double x = a.as_float();
            const double y = b.as_float();
            return x < y ? -1 : (y < x ? 1 : 0);
        }
        const auto x = a.as_int();
        const auto y = b.as_int();
        return x < y ? -1 : (y < x ? 1 : 0);
    }
    if (a.is_string() && b.is_string()) {
        // UTF-8 byte order is code point order.
        const int c = a.as_string().compare(b.as_string());
        return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    if (a.is(Value::Kind::kList) && b.is(Value::Kind::kList) &&
        a.as_list().is_tuple == b.as_list().is_tuple) {
        const auto& x = a.as_list().items;
        const auto& y = b.as_list().items;
        for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
            if (!equals(x[i], y[i])) {
                return compare(x[i], y[i]);
            }
        }
        return x.size() < y.size() ? -1 : (y.size() < x.size() ? 1 : 0);
    }
    fail("'<' not supported between instances of '", type_name(a), "' and '", type_name(b), "'");
}

Value from_json(const Json& json) {
    switch (json.type()) {
        case Json::value_t::null:
            return Value::none();
        case Json::value_t::boolean:
            return Value::boolean(json.get<bool>());
        case Json::value_t::number_integer:
            return Value::integer(json.get<std::int64_t>());
        case Json::value_t::number_unsigned: {
            const auto u = json.get<std::uint64_t>();
            if (u <= static_cast<std::uint64_t>(INT64_MAX)) {
                return Value::integer(static_cast<std::int64_t>(u));
            }
            return Value::number(static_cast<double>(u));
        }
        case Json::value_t::number_float:
            return Value::number(json.get<double>());
        case Json::value_t::string:
            return Value::string(json.get<std::string>());
        case Json::value_t::array: {
            std::vector<Value> items;
            items.reserve(json.size());
            for (const auto& item : json) {
                items.push_back(from_json(item));
            }
            return Value::list(std::move(items));
        }
        case Json::value_t::object: {
            auto dict = std::make_shared<DictData>();
            for (const auto& [key, item] : json.items()) {
                dict->set(key, from_json(item));
            }
            return Value::dict(std::move(dict));
        }
        default:
            return Value::none();
    }
}

Json to_json(const Value& value) {
    switch (value.kind()) {
        case Value::Kind::kNone:
            return nullptr;
        case Value::Kind::kBool:
            return value.as_bool();
        case Value::Kind::kInt:
            return value.as_int();
        case Value::Kind::kFloat:
            return value.as_float();
        case Value::Kind::kString:
            return value.as_string();
        case Value::Kind::kList: {
            Json out = Json::array();
            for (const auto& item : value.as_list().items) {
                out.push_back(to_json(item));
            }
            return out;
        }
        case Value::Kind::kDict: {
            Json out = Json::object();
            for (const auto& [key, item] : value.as_dict().entries()) {
                out[key] = to_json(item);
            }
            return out;
        }
        default:
            fail("Object of type ", type_name(value), " is not JSON serializable");
    }
}

}  // namespace dsserve::chat::jinja
