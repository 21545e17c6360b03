// Jinja's built-in filters, tests, globals and the methods of str, dict and list that the sandbox
// lets templates call, with transformers' overrides (tojson, raise_exception, namespace).
#pragma once

#include <string>
#include <string_view>

#include "chat/jinja/value.h"

namespace dsserve::chat::jinja {

bool is_known_filter(std::string_view name);
bool is_known_test(std::string_view name);

// Applies a filter; args.positional excludes the filtered value.
Value apply_filter(Renderer& renderer, std::string_view name, const Value& value, CallArgs& args);
bool apply_test(Renderer& renderer, std::string_view name, const Value& value, CallArgs& args);

// `obj.name`, with the sandbox's rules (methods of str/dict/list, unsafe ones as unsafe
// Undefined); `obj[key]` first tries items, then attributes.
Value get_attr(const Value& obj, const std::string& name);
Value get_item(const Value& obj, const Value& key);

// The environment's globals: range, dict, namespace, raise_exception, strftime_now.
void add_globals(DictData& globals);

// Python iteration: list items, dict keys, str code points, nothing for Undefined.
std::vector<Value> iterate(const Value& value);

}  // namespace dsserve::chat::jinja
