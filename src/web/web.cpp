#include "web/web.h"

#include <algorithm>
#include <array>
#include <cstddef>

// web_assets.inc lists WEB_ASSET(index, "name") for every embedded file; web_assets.S holds
// the bytes between dsserve_web_asset_<index> and dsserve_web_asset_<index>_end.
#define WEB_ASSET(n, name)                         \
    extern "C" const char dsserve_web_asset_##n[]; \
    extern "C" const char dsserve_web_asset_##n##_end[];
#include "web_assets.inc"
#undef WEB_ASSET

namespace dsserve::web {
namespace {

struct Entry {
    std::string_view name;
    const char* begin;
    const char* end;
};

#define WEB_ASSET(n, name) Entry{name, dsserve_web_asset_##n, dsserve_web_asset_##n##_end},
constexpr std::array kEntries = {
#include "web_assets.inc"
};
#undef WEB_ASSET

constexpr std::string_view kIndex = "index.html";
constexpr std::string_view kStatic = "/static/";

const Entry* find(std::string_view name) {
    for (const Entry& entry : kEntries) {
        if (entry.name == name) {
            return &entry;
        }
    }
    return nullptr;
}

bool ends_with(std::string_view text, std::string_view suffix) {
    return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

}  // namespace

std::string_view content_type(std::string_view name) {
    struct Type {
        std::string_view extension;
        std::string_view type;
    };
    static constexpr std::array kTypes = {
        Type{".html", "text/html; charset=utf-8"},
        Type{".css", "text/css; charset=utf-8"},
        Type{".js", "text/javascript; charset=utf-8"},
        Type{".json", "application/json"},
        Type{".svg", "image/svg+xml"},
        Type{".png", "image/png"},
        Type{".txt", "text/plain; charset=utf-8"},
    };
    for (const Type& type : kTypes) {
        if (ends_with(name, type.extension)) {
            return type.type;
        }
    }
    return "application/octet-stream";
}

std::optional<Asset> asset(std::string_view path) {
    path = path.substr(0, path.find('?'));
    std::string_view name;
    if (path == "/" || path == "/index.html") {
        name = kIndex;
    } else if (path.starts_with(kStatic)) {
        name = path.substr(kStatic.size());
    } else {
        return std::nullopt;
    }
    const Entry* entry = find(name);
    if (entry == nullptr) {
        return std::nullopt;
    }
    return Asset{{entry->begin, static_cast<size_t>(entry->end - entry->begin)},
                 content_type(entry->name)};
}

std::vector<std::string_view> asset_names() {
    std::vector<std::string_view> names;
    for (const Entry& entry : kEntries) {
        names.push_back(entry.name);
    }
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace dsserve::web
