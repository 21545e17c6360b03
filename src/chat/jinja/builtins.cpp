#include "chat/jinja/builtins.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <unordered_map>

#include "chat/jinja/pystring.h"
#include "chat/jinja/renderer.h"
#include "core/error.h"
#include "core/pyjson.h"
#include "core/utf8.h"

namespace dsserve::chat::jinja {
namespace {

// ---- argument access ----

// Positional argument `index` or keyword `name`; nullopt when neither was given.
std::optional<Value> arg(const CallArgs& args, size_t index, std::string_view name) {
    if (index < args.positional.size()) {
        return args.positional[index];
    }
    for (const auto& [key, value] : args.keyword) {
        if (key == name) {
            return value;
        }
    }
    return std::nullopt;
}

void max_args(const CallArgs& args, size_t count, std::string_view what) {
    DS_CHECK(args.positional.size() <= count, what, "() takes at most ", count,
             " positional argument(s) (", args.positional.size(), " given)");
}

std::string str_arg(const CallArgs& args, size_t index, std::string_view name,
                    std::string_view what) {
    const auto v = arg(args, index, name);
    DS_CHECK(v.has_value(), what, "() missing argument '", name, "'");
    DS_CHECK(v->is_string(), what, "() argument '", name, "' must be str, not ", type_name(*v));
    return v->as_string();
}

std::optional<std::string> optional_str_arg(const CallArgs& args, size_t index,
                                            std::string_view name, std::string_view what) {
    const auto v = arg(args, index, name);
    if (!v || v->is_none()) {
        return std::nullopt;
    }
    DS_CHECK(v->is_string(), what, "() argument '", name, "' must be str or None, not ",
             type_name(*v));
    return v->as_string();
}

std::int64_t int_arg(const CallArgs& args, size_t index, std::string_view name,
                     std::int64_t fallback, std::string_view what) {
    const auto v = arg(args, index, name);
    if (!v || v->is_none()) {
        return fallback;
    }
    DS_CHECK(v->is(Value::Kind::kInt) || v->is(Value::Kind::kBool), what, "() argument '", name,
             "' must be an integer, not ", type_name(*v));
    return v->as_int();
}

bool bool_arg(const CallArgs& args, size_t index, std::string_view name, bool fallback) {
    const auto v = arg(args, index, name);
    return v ? truthy(*v) : fallback;
}

Value make_method(std::string name, std::function<Value(Renderer&, CallArgs&)> fn) {
    auto f = std::make_shared<Function>();
    f->name = std::move(name);
    f->call = std::move(fn);
    return Value::function(std::move(f));
}

Value unsafe(const Value& obj, const std::string& name) {
    return Value::undefined(
        str_cat("access to attribute '", name, "' of '", type_name(obj), "' object is unsafe."),
        true);
}

Value no_attribute(const Value& obj, const std::string& name) {
    return Value::undefined(str_cat("'", type_name(obj), " object' has no attribute '", name, "'"));
}

Value tuple2(Value a, Value b) {
    return Value::list({std::move(a), std::move(b)}, true);
}

// ---- methods of str, dict, list ----

std::optional<Value> str_method(const Value& self, const std::string& name) {
    const std::string s = self.as_string();
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
        return make_method(name, [s, name](Renderer&, CallArgs& args) {
            max_args(args, 1, name);
            const auto chars = optional_str_arg(args, 0, "chars", name);
            return Value::string(py_strip(s, chars, name != "rstrip", name != "lstrip"));
        });
    }
    if (name == "split" || name == "rsplit") {
        return make_method(name, [s, name](Renderer& r, CallArgs& args) {
            max_args(args, 2, name);
            const auto sep = optional_str_arg(args, 0, "sep", name);
            DS_CHECK(!sep || !sep->empty(), "empty separator");
            const auto maxsplit = int_arg(args, 1, "maxsplit", -1, name);
            std::vector<Value> parts;
            for (auto& part : py_split(s, sep, static_cast<long>(maxsplit), name == "rsplit")) {
                parts.push_back(Value::string(std::move(part)));
            }
            r.check_size(parts.size() * sizeof(Value));
            return Value::list(std::move(parts));
        });
    }
    if (name == "startswith" || name == "endswith") {
        return make_method(name, [s, name](Renderer&, CallArgs& args) {
            max_args(args, 1, name);
            const auto probe = arg(args, 0, "prefix");
            DS_CHECK(probe.has_value(), name, "() takes at least 1 argument");
            std::vector<std::string> options;
            if (probe->is_string()) {
                options.push_back(probe->as_string());
            } else if (probe->is(Value::Kind::kList) && probe->as_list().is_tuple) {
                for (const auto& item : probe->as_list().items) {
                    DS_CHECK(item.is_string(), "tuple for ", name, " must only contain str");
                    options.push_back(item.as_string());
                }
            } else {
                fail(name, " first arg must be str or a tuple of str, not ", type_name(*probe));
            }
            for (const auto& option : options) {
                const bool hit = name == "startswith" ? s.compare(0, option.size(), option) == 0
                                                      : s.size() >= option.size() &&
                                                            s.compare(s.size() - option.size(),
                                                                      option.size(), option) == 0;
                if (hit) {
                    return Value::boolean(true);
                }
            }
            return Value::boolean(false);
        });
    }
    if (name == "replace") {
        return make_method(name, [s](Renderer& r, CallArgs& args) {
            max_args(args, 3, "replace");
            const std::string old = str_arg(args, 0, "old", "replace");
            const std::string replacement = str_arg(args, 1, "new", "replace");
            const auto count = int_arg(args, 2, "count", -1, "replace");
            std::string out = py_replace(s, old, replacement, static_cast<long>(count));
            r.check_size(out.size());
            return Value::string(std::move(out));
        });
    }
    if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
        return make_method(name, [s, name](Renderer&, CallArgs& args) {
            max_args(args, 0, name);
            if (name == "upper") {
                return Value::string(ascii_upper(s));
            }
            if (name == "lower") {
                return Value::string(ascii_lower(s));
            }
            return Value::string(name == "title" ? py_title(s) : py_capitalize(s));
        });
    }
    if (name == "find" || name == "rfind" || name == "count" || name == "index") {
        return make_method(name, [s, name](Renderer&, CallArgs& args) {
            max_args(args, 1, name);
            const std::string sub = str_arg(args, 0, "sub", name);
            const auto to_code_points = [&](size_t byte_pos) {
                return static_cast<std::int64_t>(code_point_count(s.substr(0, byte_pos)));
            };
            if (name == "count") {
                if (sub.empty()) {
                    return Value::integer(static_cast<std::int64_t>(code_point_count(s)) + 1);
                }
                std::int64_t n = 0;
                for (size_t p = s.find(sub); p != std::string::npos;
                     p = s.find(sub, p + sub.size())) {
                    ++n;
                }
                return Value::integer(n);
            }
            const size_t p = name == "rfind" ? s.rfind(sub) : s.find(sub);
            if (p == std::string::npos) {
                DS_CHECK(name != "index", "substring not found");
                return Value::integer(-1);
            }
            return Value::integer(to_code_points(p));
        });
    }
    if (name == "join") {
        return make_method(name, [s](Renderer& r, CallArgs& args) {
            max_args(args, 1, "join");
            const auto items = arg(args, 0, "iterable");
            DS_CHECK(items.has_value(), "join() takes exactly one argument");
            std::string out;
            bool first = true;
            for (const auto& item : iterate(*items)) {
                DS_CHECK(item.is_string(), "sequence item: expected str instance, ",
                         type_name(item), " found");
                if (!first) {
                    out += s;
                }
                first = false;
                out += item.as_string();
                r.check_size(out.size());
            }
            return Value::string(std::move(out));
        });
    }
    if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace" ||
        name == "isupper" || name == "islower") {
        return make_method(name, [s, name](Renderer&, CallArgs& args) {
            max_args(args, 0, name);
            if (name == "isspace") {
                size_t i = 0;
                bool all = !s.empty();
                while (i < s.size() && all) {
                    all = is_python_space(utf8_next(s, i));
                }
                return Value::boolean(all);
            }
            if (name == "isupper" || name == "islower") {
                bool cased = false;
                for (char c : s) {
                    const bool up = c >= 'A' && c <= 'Z';
                    const bool low = c >= 'a' && c <= 'z';
                    if ((name == "isupper" && low) || (name == "islower" && up)) {
                        return Value::boolean(false);
                    }
                    cased = cased || up || low;
                }
                return Value::boolean(cased);
            }
            bool all = !s.empty();
            for (char c : s) {
                const bool digit = c >= '0' && c <= '9';
                const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
                const bool ok =
                    name == "isdigit" ? digit : (name == "isalpha" ? alpha : digit || alpha);
                all = all && ok;
            }
            return Value::boolean(all);
        });
    }
    if (name == "splitlines") {
        return make_method(name, [s](Renderer&, CallArgs& args) {
            max_args(args, 1, "splitlines");
            const bool keep = bool_arg(args, 0, "keepends", false);
            std::vector<Value> lines;
            size_t i = 0;
            size_t start = 0;
            while (i < s.size()) {
                const size_t at = i;
                const char32_t cp = utf8_next(s, i);
                const bool breaks = cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C ||
                                    cp == 0x1C || cp == 0x1D || cp == 0x1E || cp == 0x85 ||
                                    cp == 0x2028 || cp == 0x2029;
                if (!breaks) {
                    continue;
                }
                if (cp == '\r' && i < s.size() && s[i] == '\n') {
                    ++i;
                }
                lines.push_back(Value::string(s.substr(start, (keep ? i : at) - start)));
                start = i;
            }
            if (start < s.size()) {
                lines.push_back(Value::string(s.substr(start)));
            }
            return Value::list(std::move(lines));
        });
    }
    return std::nullopt;
}

std::optional<Value> dict_method(const Value& self, const std::string& name) {
    if (name == "items" || name == "keys" || name == "values") {
        return make_method(name, [self, name](Renderer&, CallArgs& args) {
            max_args(args, 0, name);
            std::vector<Value> out;
            for (const auto& [key, value] : self.as_dict().entries()) {
                if (name == "items") {
                    out.push_back(tuple2(Value::string(key), value));
                } else {
                    out.push_back(name == "keys" ? Value::string(key) : value);
                }
            }
            return Value::list(std::move(out));
        });
    }
    if (name == "get") {
        return make_method(name, [self](Renderer&, CallArgs& args) {
            max_args(args, 2, "get");
            const auto key = arg(args, 0, "key");
            DS_CHECK(key.has_value(), "get expected at least 1 argument, got 0");
            if (key->is_string()) {
                if (const Value* v = self.as_dict().find(key->as_string())) {
                    return *v;
                }
            }
            return arg(args, 1, "default").value_or(Value::none());
        });
    }
    if (name == "copy") {
        return make_method(name, [self](Renderer&, CallArgs&) { return self; });
    }
    if (name == "pop" || name == "popitem" || name == "setdefault" || name == "update" ||
        name == "clear") {
        return unsafe(self, name);
    }
    return std::nullopt;
}

std::optional<Value> list_method(const Value& self, const std::string& name) {
    if (name == "index" || name == "count") {
        return make_method(name, [self, name](Renderer&, CallArgs& args) {
            max_args(args, 1, name);
            const auto needle = arg(args, 0, "value");
            DS_CHECK(needle.has_value(), name, "() takes exactly one argument");
            const auto& items = self.as_list().items;
            std::int64_t count = 0;
            for (size_t i = 0; i < items.size(); ++i) {
                if (equals(items[i], *needle)) {
                    if (name == "index") {
                        return Value::integer(static_cast<std::int64_t>(i));
                    }
                    ++count;
                }
            }
            DS_CHECK(name == "count", "value is not in list");
            return Value::integer(count);
        });
    }
    if (name == "copy" && !self.as_list().is_tuple) {
        return make_method(name, [self](Renderer&, CallArgs&) { return self; });
    }
    if (!self.as_list().is_tuple &&
        (name == "append" || name == "extend" || name == "insert" || name == "pop" ||
         name == "remove" || name == "reverse" || name == "sort" || name == "clear")) {
        return unsafe(self, name);
    }
    return std::nullopt;
}

Value loop_attr(const Value& loop_value, const std::string& name) {
    const NamespaceData& loop = loop_value.as_namespace();
    const auto& items = loop.loop_items->items;
    const auto n = static_cast<std::int64_t>(items.size());
    const auto i = static_cast<std::int64_t>(loop.loop_index);
    if (name == "index") {
        return Value::integer(i + 1);
    }
    if (name == "index0") {
        return Value::integer(i);
    }
    if (name == "revindex") {
        return Value::integer(n - i);
    }
    if (name == "revindex0") {
        return Value::integer(n - i - 1);
    }
    if (name == "first") {
        return Value::boolean(i == 0);
    }
    if (name == "last") {
        return Value::boolean(i == n - 1);
    }
    if (name == "length") {
        return Value::integer(n);
    }
    if (name == "depth") {
        return Value::integer(1);
    }
    if (name == "depth0") {
        return Value::integer(0);
    }
    if (name == "previtem") {
        return i > 0 ? items[static_cast<size_t>(i - 1)]
                     : Value::undefined("there is no previous item");
    }
    if (name == "nextitem") {
        return i + 1 < n ? items[static_cast<size_t>(i + 1)]
                         : Value::undefined("there is no next item");
    }
    if (name == "cycle") {
        return make_method("cycle", [i](Renderer&, CallArgs& args) {
            DS_CHECK(!args.positional.empty(), "no items for cycling given");
            return args.positional[static_cast<size_t>(i) % args.positional.size()];
        });
    }
    return no_attribute(loop_value, name);
}

// ---- conversions ----

std::optional<std::int64_t> parse_py_int(std::string_view text, int base) {
    const std::string s = py_strip(text, std::nullopt, true, true);
    size_t i = 0;
    bool negative = false;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
        negative = s[i] == '-';
        ++i;
    }
    if (base == 16 && s.compare(i, 2, "0x") == 0) {
        i += 2;
    } else if (base == 8 && s.compare(i, 2, "0o") == 0) {
        i += 2;
    } else if (base == 2 && s.compare(i, 2, "0b") == 0) {
        i += 2;
    }
    std::string digits;
    bool last_underscore = true;
    for (; i < s.size(); ++i) {
        if (s[i] == '_') {
            if (last_underscore) {
                return std::nullopt;
            }
            last_underscore = true;
            continue;
        }
        last_underscore = false;
        digits += s[i];
    }
    if (digits.empty() || last_underscore) {
        return std::nullopt;
    }
    errno = 0;
    char* end = nullptr;
    const long long v = std::strtoll(digits.c_str(), &end, base);
    if (*end != '\0' || digits[0] == '+' || digits[0] == '-' || digits[0] == ' ') {
        return std::nullopt;
    }
    DS_CHECK(errno != ERANGE, "integer too large (integers are limited to 64 bits)");
    return negative ? -v : v;
}

std::optional<double> parse_py_float(std::string_view text) {
    std::string s = py_strip(text, std::nullopt, true, true);
    std::string lower = ascii_lower(s);
    std::string_view body = lower;
    if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
        body.remove_prefix(1);
    }
    if (body == "inf" || body == "infinity" || body == "nan") {
        return std::strtod(lower.c_str(), nullptr);
    }
    std::string clean;
    bool digit_before = false;
    for (size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (c == '_') {
            const bool digit_after = i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '9';
            if (!digit_before || !digit_after) {
                return std::nullopt;
            }
            continue;
        }
        const bool ok =
            (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-';
        if (!ok) {
            return std::nullopt;
        }
        digit_before = c >= '0' && c <= '9';
        clean += c;
    }
    if (clean.empty()) {
        return std::nullopt;
    }
    char* end = nullptr;
    const double v = std::strtod(clean.c_str(), &end);
    if (*end != '\0' || end == clean.c_str()) {
        return std::nullopt;
    }
    return v;
}

// Jinja's make_attrgetter: "a.b.0" looks up each part with getitem (digits as integers).
Value lookup_path(const Value& item, const std::string& path) {
    Value current = item;
    size_t start = 0;
    while (true) {
        const size_t dot = path.find('.', start);
        const std::string part = path.substr(start, dot == std::string::npos ? dot : dot - start);
        if (current.is_undefined()) {
            raise_undefined(current);
        }
        const bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) {
            return c >= '0' && c <= '9';
        });
        current = numeric ? get_item(current, Value::integer(std::atoll(part.c_str())))
                          : get_item(current, Value::string(part));
        if (dot == std::string::npos) {
            return current;
        }
        start = dot + 1;
    }
}

// Sort key for case-insensitive filters: strings lowered, everything else as is.
Value fold_case(const Value& v, bool case_sensitive) {
    if (!case_sensitive && v.is_string()) {
        return Value::string(ascii_lower(v.as_string()));
    }
    return v;
}

std::string html_escape(std::string_view s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&#34;";
                break;
            case '\'':
                out += "&#39;";
                break;
            default:
                out += c;
        }
    }
    return out;
}

std::vector<std::string> py_splitlines(const std::string& s) {
    std::vector<std::string> lines;
    size_t i = 0;
    size_t start = 0;
    while (i < s.size()) {
        const size_t at = i;
        const char32_t cp = utf8_next(s, i);
        if (cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || cp == 0x1C || cp == 0x1D ||
            cp == 0x1E || cp == 0x85 || cp == 0x2028 || cp == 0x2029) {
            if (cp == '\r' && i < s.size() && s[i] == '\n') {
                ++i;
            }
            lines.push_back(s.substr(start, at - start));
            start = i;
        }
    }
    if (start < s.size()) {
        lines.push_back(s.substr(start));
    }
    return lines;
}

double py_round(double value, std::int64_t digits) {
    if (!std::isfinite(value)) {
        return value;
    }
    if (digits == 0) {
        return std::nearbyint(value);  // round half to even, as Python
    }
    // Correctly rounded decimal conversion, as CPython's round() does.
    char buf[512];
    const int precision = static_cast<int>(std::clamp<std::int64_t>(digits, -300, 300));
    if (precision < 0) {
        const double scale = std::pow(10.0, -precision);
        return std::nearbyint(value / scale) * scale;
    }
    std::snprintf(buf, sizeof(buf), "%.*f", precision, value);
    return std::strtod(buf, nullptr);
}

// ---- filters ----

using FilterFn = Value (*)(Renderer&, const Value&, CallArgs&);

std::vector<Value> select_items(Renderer& r, const Value& seq, CallArgs& args, bool by_attr,
                                bool keep_when) {
    std::optional<std::string> attribute;
    size_t next = 0;
    if (by_attr) {
        const auto a = arg(args, 0, "attribute");
        DS_CHECK(a && a->is_string(), "selectattr/rejectattr need an attribute name");
        attribute = a->as_string();
        next = 1;
    }
    std::optional<std::string> test;
    CallArgs test_args;
    if (next < args.positional.size()) {
        DS_CHECK(args.positional[next].is_string(), "test name must be a string");
        test = args.positional[next].as_string();
        DS_CHECK(is_known_test(*test), "no test named '", *test, "'");
        test_args.positional.assign(args.positional.begin() + static_cast<long>(next) + 1,
                                    args.positional.end());
        test_args.keyword = args.keyword;
    }
    std::vector<Value> out;
    for (const auto& item : iterate(seq)) {
        r.step();
        const Value probe = attribute ? lookup_path(item, *attribute) : item;
        CallArgs call_args = test_args;
        const bool ok = test ? apply_test(r, *test, probe, call_args) : truthy(probe);
        if (ok == keep_when) {
            out.push_back(item);
        }
    }
    return out;
}

Value filter_abs(Renderer&, const Value& v, CallArgs&) {
    DS_CHECK(v.is_numeric(), "bad operand type for abs(): '", type_name(v), "'");
    if (v.is(Value::Kind::kFloat)) {
        return Value::number(std::fabs(v.as_float()));
    }
    DS_CHECK(v.as_int() != INT64_MIN, "integer overflow");
    return Value::integer(v.as_int() < 0 ? -v.as_int() : v.as_int());
}

// Only real attributes (methods, namespace members), never items: jinja2's do_attr.
Value filter_attr(Renderer&, const Value& v, CallArgs& args) {
    const std::string name = str_arg(args, 0, "name", "attr");
    if (v.is_undefined()) {
        raise_undefined(v);
    }
    if (v.is(Value::Kind::kDict)) {
        if (auto method = dict_method(v, name)) {
            return *method;
        }
        return no_attribute(v, name);
    }
    return get_attr(v, name);
}

Value filter_capitalize(Renderer&, const Value& v, CallArgs&) {
    return Value::string(py_capitalize(to_str(v)));
}

Value filter_center(Renderer&, const Value& v, CallArgs& args) {
    const std::string s = to_str(v);
    const auto width = int_arg(args, 0, "width", 80, "center");
    const auto len = static_cast<std::int64_t>(code_point_count(s));
    if (width <= len) {
        return Value::string(s);
    }
    DS_CHECK(width < (1 << 24), "center width too large");
    const std::int64_t pad = width - len;
    const std::int64_t left = pad / 2 + (pad & width & 1);
    return Value::string(std::string(static_cast<size_t>(left), ' ') + s +
                         std::string(static_cast<size_t>(pad - left), ' '));
}

Value filter_default(Renderer&, const Value& v, CallArgs& args) {
    const bool boolean = bool_arg(args, 1, "boolean", false);
    if (v.is_undefined() || (boolean && !truthy(v))) {
        return arg(args, 0, "default_value").value_or(Value::string(""));
    }
    return v;
}

Value filter_dictsort(Renderer&, const Value& v, CallArgs& args) {
    DS_CHECK(v.is(Value::Kind::kDict), "dictsort needs a mapping");
    const bool case_sensitive = bool_arg(args, 0, "case_sensitive", false);
    const auto by = arg(args, 1, "by").value_or(Value::string("key"));
    const bool reverse = bool_arg(args, 2, "reverse", false);
    DS_CHECK(by.is_string() && (by.as_string() == "key" || by.as_string() == "value"),
             "You can only sort by either 'key' or 'value'");
    const size_t pos = by.as_string() == "key" ? 0 : 1;
    std::vector<Value> items;
    for (const auto& [key, value] : v.as_dict().entries()) {
        items.push_back(tuple2(Value::string(key), value));
    }
    std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
        const int c = compare(fold_case(a.as_list().items[pos], case_sensitive),
                              fold_case(b.as_list().items[pos], case_sensitive));
        return reverse ? c > 0 : c < 0;
    });
    return Value::list(std::move(items));
}

Value filter_escape(Renderer&, const Value& v, CallArgs&) {
    return Value::string(html_escape(to_str(v)));
}

Value filter_first(Renderer&, const Value& v, CallArgs&) {
    if (v.is_undefined()) {
        return Value::undefined("No first item, sequence was empty.");
    }
    const auto items = iterate(v);
    return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
}

Value filter_last(Renderer&, const Value& v, CallArgs&) {
    if (v.is_undefined()) {
        return Value::undefined("No last item, sequence was empty.");
    }
    const auto items = iterate(v);
    return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
}

Value filter_float(Renderer&, const Value& v, CallArgs& args) {
    const Value fallback = arg(args, 0, "default").value_or(Value::number(0.0));
    if (v.is_undefined()) {
        raise_undefined(v);
    }
    if (v.is_numeric()) {
        return Value::number(v.as_float());
    }
    if (v.is_string()) {
        if (const auto f = parse_py_float(v.as_string())) {
            return Value::number(*f);
        }
    }
    return fallback;
}

Value filter_int(Renderer&, const Value& v, CallArgs& args) {
    const Value fallback = arg(args, 0, "default").value_or(Value::integer(0));
    const auto base = int_arg(args, 1, "base", 10, "int");
    DS_CHECK(base >= 2 && base <= 36, "int() base must be >= 2 and <= 36");
    if (v.is_undefined()) {
        raise_undefined(v);
    }
    if (v.is(Value::Kind::kInt) || v.is(Value::Kind::kBool)) {
        return Value::integer(v.as_int());
    }
    if (v.is(Value::Kind::kFloat)) {
        const double f = v.as_float();
        DS_CHECK(std::isfinite(f), "cannot convert float ", to_str(v), " to integer");
        DS_CHECK(std::fabs(f) < 9.2e18, "integer too large (integers are limited to 64 bits)");
        return Value::integer(static_cast<std::int64_t>(f));
    }
    if (v.is_string()) {
        if (const auto i = parse_py_int(v.as_string(), static_cast<int>(base))) {
            return Value::integer(*i);
        }
        // "42.23"|int is 42.
        if (const auto f = parse_py_float(v.as_string()); f && std::isfinite(*f)) {
            DS_CHECK(std::fabs(*f) < 9.2e18, "integer too large (integers are limited to 64 bits)");
            return Value::integer(static_cast<std::int64_t>(*f));
        }
    }
    return fallback;
}

Value filter_indent(Renderer& r, const Value& v, CallArgs& args) {
    const auto width = arg(args, 0, "width").value_or(Value::integer(4));
    const bool first = bool_arg(args, 1, "first", false);
    const bool blank = bool_arg(args, 2, "blank", false);
    std::string indention;
    if (width.is_string()) {
        indention = width.as_string();
    } else {
        DS_CHECK(width.is(Value::Kind::kInt) && width.as_int() >= 0 && width.as_int() < 4096,
                 "indent width must be a small non-negative integer or a string");
        indention.assign(static_cast<size_t>(width.as_int()), ' ');
    }
    const std::string s = to_str(v) + "\n";
    const auto lines = py_splitlines(s);
    std::string out;
    if (blank) {
        for (size_t i = 0; i < lines.size(); ++i) {
            if (i > 0) {
                out += "\n" + indention;
            }
            out += lines[i];
        }
    } else {
        out = lines.empty() ? std::string() : lines.front();
        for (size_t i = 1; i < lines.size(); ++i) {
            out += "\n";
            if (!lines[i].empty()) {
                out += indention;
            }
            out += lines[i];
            r.check_size(out.size());
        }
    }
    if (first) {
        out = indention + out;
    }
    r.check_size(out.size());
    return Value::string(std::move(out));
}

Value filter_items(Renderer&, const Value& v, CallArgs&) {
    if (v.is_undefined()) {
        return Value::list({});
    }
    DS_CHECK(v.is(Value::Kind::kDict), "Can only get item pairs from a mapping.");
    std::vector<Value> out;
    for (const auto& [key, value] : v.as_dict().entries()) {
        out.push_back(tuple2(Value::string(key), value));
    }
    return Value::list(std::move(out));
}

Value filter_join(Renderer& r, const Value& v, CallArgs& args) {
    const std::string separator = to_str(arg(args, 0, "d").value_or(Value::string("")));
    const auto attribute = optional_str_arg(args, 1, "attribute", "join");
    std::string out;
    bool first = true;
    for (const auto& item : iterate(v)) {
        if (!first) {
            out += separator;
        }
        first = false;
        out += to_str(attribute ? lookup_path(item, *attribute) : item);
        r.check_size(out.size());
    }
    return Value::string(std::move(out));
}

Value filter_length(Renderer&, const Value& v, CallArgs&) {
    switch (v.kind()) {
        case Value::Kind::kUndefined:
            return Value::integer(0);
        case Value::Kind::kString:
            return Value::integer(static_cast<std::int64_t>(code_point_count(v.as_string())));
        case Value::Kind::kList:
            return Value::integer(static_cast<std::int64_t>(v.as_list().items.size()));
        case Value::Kind::kDict:
            return Value::integer(static_cast<std::int64_t>(v.as_dict().size()));
        case Value::Kind::kNamespace:
            if (v.as_namespace().is_loop) {
                return Value::integer(
                    static_cast<std::int64_t>(v.as_namespace().loop_items->items.size()));
            }
            break;
        default:
            break;
    }
    fail("object of type '", type_name(v), "' has no len()");
}

Value filter_list(Renderer&, const Value& v, CallArgs&) {
    return Value::list(iterate(v));
}

Value filter_lower(Renderer&, const Value& v, CallArgs&) {
    return Value::string(ascii_lower(to_str(v)));
}

Value filter_upper(Renderer&, const Value& v, CallArgs&) {
    return Value::string(ascii_upper(to_str(v)));
}

Value filter_map(Renderer& r, const Value& v, CallArgs& args) {
    std::vector<Value> out;
    if (args.positional.empty()) {
        const auto attribute = optional_str_arg(args, 99, "attribute", "map");
        DS_CHECK(attribute.has_value(), "map requires a filter name or attribute=");
        std::optional<Value> fallback;
        for (const auto& [key, value] : args.keyword) {
            if (key == "default") {
                fallback = value;
            }
        }
        for (const auto& item : iterate(v)) {
            r.step();
            Value mapped = lookup_path(item, *attribute);
            if (mapped.is_undefined() && fallback) {
                mapped = *fallback;
            }
            out.push_back(std::move(mapped));
        }
        return Value::list(std::move(out));
    }
    DS_CHECK(args.positional[0].is_string(), "map filter name must be a string");
    const std::string name = args.positional[0].as_string();
    DS_CHECK(is_known_filter(name), "no filter named '", name, "'");
    CallArgs rest;
    rest.positional.assign(args.positional.begin() + 1, args.positional.end());
    rest.keyword = args.keyword;
    for (const auto& item : iterate(v)) {
        r.step();
        CallArgs call_args = rest;
        out.push_back(apply_filter(r, name, item, call_args));
    }
    return Value::list(std::move(out));
}

Value min_max(const Value& v, CallArgs& args, bool want_max) {
    const bool case_sensitive = bool_arg(args, 0, "case_sensitive", false);
    const auto attribute = optional_str_arg(args, 1, "attribute", want_max ? "max" : "min");
    const auto items = iterate(v);
    if (items.empty()) {
        return Value::undefined("No aggregated item, sequence was empty.");
    }
    size_t best = 0;
    const auto key = [&](const Value& item) {
        return fold_case(attribute ? lookup_path(item, *attribute) : item, case_sensitive);
    };
    for (size_t i = 1; i < items.size(); ++i) {
        const int c = compare(key(items[i]), key(items[best]));
        if (want_max ? c > 0 : c < 0) {
            best = i;
        }
    }
    return items[best];
}

Value filter_max(Renderer&, const Value& v, CallArgs& args) {
    return min_max(v, args, true);
}
Value filter_min(Renderer&, const Value& v, CallArgs& args) {
    return min_max(v, args, false);
}

Value filter_select(Renderer& r, const Value& v, CallArgs& args) {
    return Value::list(select_items(r, v, args, false, true));
}
Value filter_reject(Renderer& r, const Value& v, CallArgs& args) {
    return Value::list(select_items(r, v, args, false, false));
}
Value filter_selectattr(Renderer& r, const Value& v, CallArgs& args) {
    return Value::list(select_items(r, v, args, true, true));
}
Value filter_rejectattr(Renderer& r, const Value& v, CallArgs& args) {
    return Value::list(select_items(r, v, args, true, false));
}

Value filter_replace(Renderer& r, const Value& v, CallArgs& args) {
    const auto old = arg(args, 0, "old");
    const auto replacement = arg(args, 1, "new");
    DS_CHECK(old && replacement, "replace() needs old and new");
    const auto count = int_arg(args, 2, "count", -1, "replace");
    std::string out =
        py_replace(to_str(v), to_str(*old), to_str(*replacement), static_cast<long>(count));
    r.check_size(out.size());
    return Value::string(std::move(out));
}

Value filter_reverse(Renderer&, const Value& v, CallArgs&) {
    if (v.is_string()) {
        const std::string& s = v.as_string();
        const auto offsets = code_point_offsets(s);
        std::string out;
        for (size_t k = offsets.size() - 1; k-- > 0;) {
            out += s.substr(offsets[k], offsets[k + 1] - offsets[k]);
        }
        return Value::string(std::move(out));
    }
    auto items = iterate(v);
    std::reverse(items.begin(), items.end());
    return Value::list(std::move(items));
}

Value filter_round(Renderer&, const Value& v, CallArgs& args) {
    const auto precision = int_arg(args, 0, "precision", 0, "round");
    const auto method = arg(args, 1, "method").value_or(Value::string("common"));
    DS_CHECK(method.is_string() && (method.as_string() == "common" ||
                                    method.as_string() == "ceil" || method.as_string() == "floor"),
             "method must be common, ceil or floor");
    DS_CHECK(v.is_numeric(), "type ", type_name(v), " doesn't define __round__ method");
    if (method.as_string() == "common") {
        if (!v.is(Value::Kind::kFloat) && precision >= 0) {
            return Value::integer(v.as_int());
        }
        return Value::number(py_round(v.as_float(), precision));
    }
    const double scale = std::pow(10.0, static_cast<double>(precision));
    const double x = v.as_float() * scale;
    return Value::number((method.as_string() == "ceil" ? std::ceil(x) : std::floor(x)) / scale);
}

Value filter_safe(Renderer&, const Value& v, CallArgs&) {
    return Value::string(to_str(v));
}

Value filter_sort(Renderer&, const Value& v, CallArgs& args) {
    const bool reverse = bool_arg(args, 0, "reverse", false);
    const bool case_sensitive = bool_arg(args, 1, "case_sensitive", false);
    const auto attribute = optional_str_arg(args, 2, "attribute", "sort");
    auto items = iterate(v);
    std::vector<Value> keys;
    for (const auto& item : items) {
        keys.push_back(fold_case(attribute ? lookup_path(item, *attribute) : item, case_sensitive));
    }
    std::vector<size_t> order(items.size());
    for (size_t i = 0; i < order.size(); ++i) {
        order[i] = i;
    }
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        const int c = compare(keys[a], keys[b]);
        return reverse ? c > 0 : c < 0;
    });
    std::vector<Value> out;
    for (const size_t i : order) {
        out.push_back(items[i]);
    }
    return Value::list(std::move(out));
}

Value filter_string(Renderer&, const Value& v, CallArgs&) {
    return Value::string(to_str(v));
}

Value filter_sum(Renderer&, const Value& v, CallArgs& args) {
    const auto attribute = optional_str_arg(args, 0, "attribute", "sum");
    Value total = arg(args, 1, "start").value_or(Value::integer(0));
    for (const auto& item : iterate(v)) {
        const Value x = attribute ? lookup_path(item, *attribute) : item;
        DS_CHECK(total.is_numeric() && x.is_numeric(), "unsupported operand type(s) for +: '",
                 type_name(total), "' and '", type_name(x), "'");
        if (total.is(Value::Kind::kFloat) || x.is(Value::Kind::kFloat)) {
            total = Value::number(total.as_float() + x.as_float());
        } else {
            std::int64_t r = 0;
            DS_CHECK(!__builtin_add_overflow(total.as_int(), x.as_int(), &r), "integer overflow");
            total = Value::integer(r);
        }
    }
    return total;
}

Value filter_title(Renderer&, const Value& v, CallArgs&) {
    // Jinja capitalizes each piece between runs of whitespace and "-({[<".
    const std::string s = to_str(v);
    std::string out;
    bool at_start = true;
    size_t i = 0;
    while (i < s.size()) {
        const size_t start = i;
        const char32_t cp = utf8_next(s, i);
        const bool separator =
            is_python_space(cp) || cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<';
        std::string piece = s.substr(start, i - start);
        if (separator) {
            at_start = true;
        } else {
            piece = at_start ? ascii_upper(piece) : ascii_lower(piece);
            at_start = false;
        }
        out += piece;
    }
    return Value::string(std::move(out));
}

Value filter_tojson(Renderer& r, const Value& v, CallArgs& args) {
    if (v.is_undefined()) {
        fail("Object of type Undefined is not JSON serializable");
    }
    PyJsonOptions options;
    options.ensure_ascii = bool_arg(args, 0, "ensure_ascii", false);
    if (const auto indent = arg(args, 1, "indent"); indent && !indent->is_none()) {
        if (indent->is_string()) {
            options.indent = indent->as_string();
        } else {
            DS_CHECK(indent->is(Value::Kind::kInt), "indent must be an integer or a string");
            DS_CHECK(indent->as_int() < 4096, "indent too large");
            options.indent =
                std::string(static_cast<size_t>(std::max<std::int64_t>(0, indent->as_int())), ' ');
        }
    }
    if (const auto separators = arg(args, 2, "separators"); separators && !separators->is_none()) {
        DS_CHECK(separators->is(Value::Kind::kList) && separators->as_list().items.size() == 2 &&
                     separators->as_list().items[0].is_string() &&
                     separators->as_list().items[1].is_string(),
                 "separators must be a pair of strings");
        options.item_separator = separators->as_list().items[0].as_string();
        options.key_separator = separators->as_list().items[1].as_string();
    }
    options.sort_keys = bool_arg(args, 3, "sort_keys", false);
    std::string out = py_json_dumps(to_json(v), options);
    r.check_size(out.size());
    return Value::string(std::move(out));
}

Value filter_trim(Renderer&, const Value& v, CallArgs& args) {
    return Value::string(
        py_strip(to_str(v), optional_str_arg(args, 0, "chars", "trim"), true, true));
}

Value filter_unique(Renderer&, const Value& v, CallArgs& args) {
    const bool case_sensitive = bool_arg(args, 0, "case_sensitive", false);
    const auto attribute = optional_str_arg(args, 1, "attribute", "unique");
    std::vector<Value> out;
    std::vector<Value> seen;
    for (const auto& item : iterate(v)) {
        const Value key =
            fold_case(attribute ? lookup_path(item, *attribute) : item, case_sensitive);
        const bool dup =
            std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, key); });
        if (!dup) {
            seen.push_back(key);
            out.push_back(item);
        }
    }
    return Value::list(std::move(out));
}

Value filter_wordcount(Renderer&, const Value& v, CallArgs&) {
    const std::string s = to_str(v);
    std::int64_t words = 0;
    bool in_word = false;
    for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        const bool word = (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') ||
                          (u >= 'A' && u <= 'Z') || u == '_' || u >= 0x80;
        if (word && !in_word) {
            ++words;
        }
        in_word = word;
    }
    return Value::integer(words);
}

const std::unordered_map<std::string_view, FilterFn>& filters() {
    static const std::unordered_map<std::string_view, FilterFn> kFilters = {
        {"abs", filter_abs},
        {"attr", filter_attr},
        {"capitalize", filter_capitalize},
        {"center", filter_center},
        {"count", filter_length},
        {"d", filter_default},
        {"default", filter_default},
        {"dictsort", filter_dictsort},
        {"e", filter_escape},
        {"escape", filter_escape},
        {"first", filter_first},
        {"float", filter_float},
        {"indent", filter_indent},
        {"int", filter_int},
        {"items", filter_items},
        {"join", filter_join},
        {"last", filter_last},
        {"length", filter_length},
        {"list", filter_list},
        {"lower", filter_lower},
        {"map", filter_map},
        {"max", filter_max},
        {"min", filter_min},
        {"reject", filter_reject},
        {"rejectattr", filter_rejectattr},
        {"replace", filter_replace},
        {"reverse", filter_reverse},
        {"round", filter_round},
        {"safe", filter_safe},
        {"select", filter_select},
        {"selectattr", filter_selectattr},
        {"sort", filter_sort},
        {"string", filter_string},
        {"sum", filter_sum},
        {"title", filter_title},
        {"tojson", filter_tojson},
        {"trim", filter_trim},
        {"unique", filter_unique},
        {"upper", filter_upper},
        {"wordcount", filter_wordcount},
    };
    return kFilters;
}

// ---- tests ----

using TestFn = bool (*)(Renderer&, const Value&, CallArgs&);

const Value& test_operand(const CallArgs& args, std::string_view test) {
    DS_CHECK(!args.positional.empty(), "test '", test, "' needs an argument");
    return args.positional[0];
}

bool is_int(const Value& v) {
    return v.is(Value::Kind::kInt) || v.is(Value::Kind::kBool);
}

const std::unordered_map<std::string_view, TestFn>& tests() {
    static const std::unordered_map<std::string_view, TestFn> kTests = {
        {"defined", [](Renderer&, const Value& v, CallArgs&) { return !v.is_undefined(); }},
        {"undefined", [](Renderer&, const Value& v, CallArgs&) { return v.is_undefined(); }},
        {"none", [](Renderer&, const Value& v, CallArgs&) { return v.is_none(); }},
        {"boolean", [](Renderer&, const Value& v, CallArgs&) { return v.is(Value::Kind::kBool); }},
        {"false", [](Renderer&, const Value& v,
                     CallArgs&) { return v.is(Value::Kind::kBool) && !v.as_bool(); }},
        {"true", [](Renderer&, const Value& v,
                    CallArgs&) { return v.is(Value::Kind::kBool) && v.as_bool(); }},
        {"integer", [](Renderer&, const Value& v, CallArgs&) { return v.is(Value::Kind::kInt); }},
        {"float", [](Renderer&, const Value& v, CallArgs&) { return v.is(Value::Kind::kFloat); }},
        {"number", [](Renderer&, const Value& v, CallArgs&) { return v.is_numeric(); }},
        {"string", [](Renderer&, const Value& v, CallArgs&) { return v.is_string(); }},
        {"mapping", [](Renderer&, const Value& v, CallArgs&) { return v.is(Value::Kind::kDict); }},
        {"iterable",
         [](Renderer&, const Value& v, CallArgs&) {
             return v.is_undefined() || v.is_string() || v.is(Value::Kind::kList) ||
                    v.is(Value::Kind::kDict) ||
                    (v.is(Value::Kind::kNamespace) && v.as_namespace().is_loop);
         }},
        {"sequence",
         [](Renderer&, const Value& v, CallArgs&) {
             return v.is_undefined() || v.is_string() || v.is(Value::Kind::kList) ||
                    v.is(Value::Kind::kDict);
         }},
        {"callable", [](Renderer&, const Value& v,
                        CallArgs&) { return v.is(Value::Kind::kFunction) || v.is_undefined(); }},
        {"escaped", [](Renderer&, const Value&, CallArgs&) { return false; }},
        {"odd",
         [](Renderer&, const Value& v, CallArgs&) {
             DS_CHECK(is_int(v), "odd test needs an integer");
             return (v.as_int() % 2) != 0;
         }},
        {"even",
         [](Renderer&, const Value& v, CallArgs&) {
             DS_CHECK(is_int(v), "even test needs an integer");
             return (v.as_int() % 2) == 0;
         }},
        {"divisibleby",
         [](Renderer&, const Value& v, CallArgs& args) {
             const Value& n = test_operand(args, "divisibleby");
             DS_CHECK(is_int(v) && is_int(n) && n.as_int() != 0,
                      "divisibleby needs integers and a non-zero divisor");
             return n.as_int() == -1 || v.as_int() % n.as_int() == 0;
         }},
        {"lower",
         [](Renderer&, const Value& v, CallArgs&) {
             const std::string s = to_str(v);
             return std::any_of(s.begin(), s.end(), [](char c) { return c >= 'a' && c <= 'z'; }) &&
                    std::none_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
         }},
        {"upper",
         [](Renderer&, const Value& v, CallArgs&) {
             const std::string s = to_str(v);
             return std::any_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; }) &&
                    std::none_of(s.begin(), s.end(), [](char c) { return c >= 'a' && c <= 'z'; });
         }},
        {"sameas",
         [](Renderer&, const Value& v, CallArgs& args) {
             const Value& other = test_operand(args, "sameas");
             if (v.kind() != other.kind()) {
                 return false;
             }
             if (v.is_none() || v.is(Value::Kind::kBool) || v.is_undefined()) {
                 return equals(v, other) && (!v.is_undefined() || &v == &other);
             }
             return v.is(Value::Kind::kInt) && equals(v, other) && v.as_int() >= -5 &&
                    v.as_int() <= 256;
         }},
        {"eq", [](Renderer&, const Value& v,
                  CallArgs& args) { return equals(v, test_operand(args, "eq")); }},
        {"ne", [](Renderer&, const Value& v,
                  CallArgs& args) { return !equals(v, test_operand(args, "ne")); }},
        {"lt", [](Renderer&, const Value& v,
                  CallArgs& args) { return compare(v, test_operand(args, "lt")) < 0; }},
        {"le", [](Renderer&, const Value& v,
                  CallArgs& args) { return compare(v, test_operand(args, "le")) <= 0; }},
        {"gt", [](Renderer&, const Value& v,
                  CallArgs& args) { return compare(v, test_operand(args, "gt")) > 0; }},
        {"ge", [](Renderer&, const Value& v,
                  CallArgs& args) { return compare(v, test_operand(args, "ge")) >= 0; }},
        {"in",
         [](Renderer&, const Value& v, CallArgs& args) {
             const Value& seq = test_operand(args, "in");
             if (seq.is_string()) {
                 DS_CHECK(v.is_string(), "'in <string>' requires string as left operand, not ",
                          type_name(v));
                 return seq.as_string().find(v.as_string()) != std::string::npos;
             }
             if (seq.is(Value::Kind::kDict)) {
                 return v.is_string() && seq.as_dict().find(v.as_string()) != nullptr;
             }
             for (const auto& item : iterate(seq)) {
                 if (equals(item, v)) {
                     return true;
                 }
             }
             return false;
         }},
        {"filter", [](Renderer&, const Value& v,
                      CallArgs&) { return v.is_string() && is_known_filter(v.as_string()); }},
        {"test", [](Renderer&, const Value& v,
                    CallArgs&) { return v.is_string() && is_known_test(v.as_string()); }},
    };
    return kTests;
}

std::string_view test_alias(std::string_view name) {
    if (name == "==" || name == "equalto") {
        return "eq";
    }
    if (name == "!=") {
        return "ne";
    }
    if (name == "<" || name == "lessthan") {
        return "lt";
    }
    if (name == "<=") {
        return "le";
    }
    if (name == ">" || name == "greaterthan") {
        return "gt";
    }
    if (name == ">=") {
        return "ge";
    }
    return name;
}

// ---- globals ----

Value global_range(Renderer& r, CallArgs& args) {
    DS_CHECK(args.keyword.empty(), "range() takes no keyword arguments");
    DS_CHECK(!args.positional.empty() && args.positional.size() <= 3,
             "range expected 1 to 3 arguments");
    for (const auto& a : args.positional) {
        DS_CHECK(is_int(a), "'", type_name(a), "' object cannot be interpreted as an integer");
    }
    std::int64_t start = 0;
    std::int64_t stop = 0;
    std::int64_t step_by = 1;
    if (args.positional.size() == 1) {
        stop = args.positional[0].as_int();
    } else {
        start = args.positional[0].as_int();
        stop = args.positional[1].as_int();
        if (args.positional.size() == 3) {
            step_by = args.positional[2].as_int();
        }
    }
    DS_CHECK(step_by != 0, "range() arg 3 must not be zero");
    // The sandbox refuses ranges over 100000 items (jinja2.sandbox.MAX_RANGE).
    const long double count_ld =
        step_by > 0 ? std::ceil((static_cast<long double>(stop) - start) / step_by)
                    : std::ceil((static_cast<long double>(start) - stop) / -step_by);
    const std::int64_t count = count_ld > 0 ? static_cast<std::int64_t>(count_ld) : 0;
    DS_CHECK(count <= 100000,
             "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    std::vector<Value> items;
    for (std::int64_t k = 0; k < count; ++k) {
        r.step();
        items.push_back(Value::integer(start + k * step_by));
    }
    return Value::list(std::move(items));
}

void fill_from_mapping(DictData& target, const CallArgs& args, std::string_view what) {
    DS_CHECK(args.positional.size() <= 1, what, " expected at most 1 positional argument");
    if (!args.positional.empty()) {
        const Value& source = args.positional[0];
        if (source.is(Value::Kind::kDict)) {
            for (const auto& [key, value] : source.as_dict().entries()) {
                target.set(key, value);
            }
        } else {
            for (const auto& pair : iterate(source)) {
                const auto parts = iterate(pair);
                DS_CHECK(parts.size() == 2 && parts[0].is_string(), what,
                         " sequence elements must be (str, value) pairs");
                target.set(parts[0].as_string(), parts[1]);
            }
        }
    }
    for (const auto& [key, value] : args.keyword) {
        target.set(key, value);
    }
}

Value global_dict(Renderer&, CallArgs& args) {
    auto dict = std::make_shared<DictData>();
    fill_from_mapping(*dict, args, "dict");
    return Value::dict(std::move(dict));
}

Value global_namespace(Renderer& r, CallArgs& args) {
    auto ns = std::make_shared<NamespaceData>();
    fill_from_mapping(ns->attrs, args, "namespace");
    for (const auto& [key, value] : ns->attrs.entries()) {
        if (!key.empty() && key[0] == '_') {
            fail(
                "Chat templates cannot store underscore-prefixed attributes on a namespace, "
                "but got '",
                key, "'");
        }
    }
    r.register_namespace(ns);
    return Value::ns(std::move(ns));
}

Value global_raise_exception(Renderer&, CallArgs& args) {
    const auto message = arg(args, 0, "message");
    throw PositionedError(message ? to_str(*message) : std::string("raise_exception()"));
}

Value global_strftime_now(Renderer&, CallArgs& args) {
    const std::string format = str_arg(args, 0, "format", "strftime_now");
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char buf[256];
    const size_t n = format.empty() ? 0 : std::strftime(buf, sizeof(buf), format.c_str(), &local);
    return Value::string(std::string(buf, n));
}

}  // namespace

bool is_known_filter(std::string_view name) {
    return filters().count(name) != 0;
}

bool is_known_test(std::string_view name) {
    return tests().count(test_alias(name)) != 0;
}

Value apply_filter(Renderer& renderer, std::string_view name, const Value& value, CallArgs& args) {
    const auto it = filters().find(name);
    DS_CHECK(it != filters().end(), "no filter named '", name, "'");
    renderer.step();
    return it->second(renderer, value, args);
}

bool apply_test(Renderer& renderer, std::string_view name, const Value& value, CallArgs& args) {
    const auto it = tests().find(test_alias(name));
    DS_CHECK(it != tests().end(), "no test named '", name, "'");
    renderer.step();
    return it->second(renderer, value, args);
}

Value get_attr(const Value& obj, const std::string& name) {
    switch (obj.kind()) {
        case Value::Kind::kUndefined:
            raise_undefined(obj);
        case Value::Kind::kNamespace:
            if (obj.as_namespace().is_loop) {
                return loop_attr(obj, name);
            }
            if (const Value* v = obj.as_namespace().attrs.find(name)) {
                return *v;
            }
            return no_attribute(obj, name);
        case Value::Kind::kDict:
            if (auto method = dict_method(obj, name)) {
                return *method;
            }
            if (const Value* v = obj.as_dict().find(name)) {
                return *v;
            }
            return no_attribute(obj, name);
        case Value::Kind::kString:
            if (auto method = str_method(obj, name)) {
                return *method;
            }
            return no_attribute(obj, name);
        case Value::Kind::kList:
            if (auto method = list_method(obj, name)) {
                return *method;
            }
            return no_attribute(obj, name);
        default:
            return no_attribute(obj, name);
    }
}

Value get_item(const Value& obj, const Value& key) {
    if (obj.is_undefined()) {
        raise_undefined(obj);
    }
    if (obj.is(Value::Kind::kDict) && key.is_string()) {
        if (const Value* v = obj.as_dict().find(key.as_string())) {
            return *v;
        }
    }
    const bool int_key = key.is(Value::Kind::kInt) || key.is(Value::Kind::kBool);
    if (int_key && (obj.is(Value::Kind::kList) || obj.is_string())) {
        std::int64_t i = key.as_int();
        if (obj.is(Value::Kind::kList)) {
            const auto n = static_cast<std::int64_t>(obj.as_list().items.size());
            if (i < 0) {
                i += n;
            }
            if (i >= 0 && i < n) {
                return obj.as_list().items[static_cast<size_t>(i)];
            }
        } else {
            const auto offsets = code_point_offsets(obj.as_string());
            const auto n = static_cast<std::int64_t>(offsets.size()) - 1;
            if (i < 0) {
                i += n;
            }
            if (i >= 0 && i < n) {
                const auto k = static_cast<size_t>(i);
                return Value::string(
                    obj.as_string().substr(offsets[k], offsets[k + 1] - offsets[k]));
            }
        }
        return Value::undefined(
            str_cat("'", type_name(obj), " object' has no element ", key.as_int()));
    }
    if (key.is_string() && !obj.is(Value::Kind::kDict)) {
        return get_attr(obj, key.as_string());
    }
    if (key.is_string() && obj.is(Value::Kind::kDict)) {
        if (auto method = dict_method(obj, key.as_string())) {
            return *method;
        }
    }
    return Value::undefined(
        str_cat("'", type_name(obj), " object' has no attribute ", to_repr(key)));
}

void add_globals(DictData& globals) {
    const auto add = [&](const char* name, Value (*fn)(Renderer&, CallArgs&)) {
        auto f = std::make_shared<Function>();
        f->name = name;
        f->call = fn;
        globals.set(name, Value::function(std::move(f)));
    };
    add("range", global_range);
    add("dict", global_dict);
    add("namespace", global_namespace);
    add("raise_exception", global_raise_exception);
    add("strftime_now", global_strftime_now);
}

std::vector<Value> iterate(const Value& value) {
    switch (value.kind()) {
        case Value::Kind::kUndefined:
            return {};
        case Value::Kind::kList:
            return value.as_list().items;
        case Value::Kind::kDict: {
            std::vector<Value> keys;
            for (const auto& [key, item] : value.as_dict().entries()) {
                keys.push_back(Value::string(key));
            }
            return keys;
        }
        case Value::Kind::kString: {
            const std::string& s = value.as_string();
            const auto offsets = code_point_offsets(s);
            std::vector<Value> chars;
            for (size_t k = 0; k + 1 < offsets.size(); ++k) {
                chars.push_back(Value::string(s.substr(offsets[k], offsets[k + 1] - offsets[k])));
            }
            return chars;
        }
        case Value::Kind::kNamespace:
            if (value.as_namespace().is_loop) {
                return value.as_namespace().loop_items->items;
            }
            break;
        default:
            break;
    }
    fail("'", type_name(value), "' object is not iterable");
}

}  // namespace dsserve::chat::jinja
