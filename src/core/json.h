// One JSON library for the whole project. ordered_json keeps key order, which the chat encoder
// needs (tool schemas are rendered in the order the client sent them).
#pragma once

#include <nlohmann/json.hpp>

namespace dsserve {
using Json = nlohmann::ordered_json;
}  // namespace dsserve
