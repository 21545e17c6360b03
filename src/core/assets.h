// Files compiled into the binary (see assets.S.in): the DeepSeek-V3.2 tokenizer files and the
// official config.json and generation_config.json.
#pragma once

#include <string_view>

namespace dsserve::assets {

std::string_view tokenizer_json();
std::string_view tokenizer_config_json();
std::string_view official_config_json();
std::string_view generation_config_json();

}  // namespace dsserve::assets
