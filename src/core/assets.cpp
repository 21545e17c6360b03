#include "core/assets.h"

#define DECLARE_ASSET(name)                       \
    extern "C" const char dsserve_asset_##name[]; \
    extern "C" const char dsserve_asset_##name##_end[];

DECLARE_ASSET(tokenizer_json)
DECLARE_ASSET(tokenizer_config_json)
DECLARE_ASSET(config_json)
DECLARE_ASSET(generation_config_json)

namespace dsserve::assets {
namespace {
std::string_view span(const char* begin, const char* end) {
    return {begin, static_cast<std::size_t>(end - begin)};
}
}  // namespace

std::string_view tokenizer_json() {
    return span(dsserve_asset_tokenizer_json, dsserve_asset_tokenizer_json_end);
}
std::string_view tokenizer_config_json() {
    return span(dsserve_asset_tokenizer_config_json, dsserve_asset_tokenizer_config_json_end);
}
std::string_view official_config_json() {
    return span(dsserve_asset_config_json, dsserve_asset_config_json_end);
}
std::string_view generation_config_json() {
    return span(dsserve_asset_generation_config_json, dsserve_asset_generation_config_json_end);
}

}  // namespace dsserve::assets
