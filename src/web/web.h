// The static web page (the repository's web/ folder, plus the command generator's table that
// src/recipe writes at build time), compiled into the binary so that `dsserve serve` needs no
// files on disk. The server routes GET / and GET /static/<file> here.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace dsserve::web {

struct Asset {
    std::string_view body;
    std::string_view content_type;  // "text/html; charset=utf-8"
};

// `path` is the request target: "/" and "/index.html" give the page, "/static/<file>" every
// embedded file (the page included); a query string is ignored. Anything else is nullopt.
std::optional<Asset> asset(std::string_view path);

// The embedded files by name ("index.html", "recipe-table.json", ...), sorted.
std::vector<std::string_view> asset_names();

// The content type dsserve sends for a file name, by extension.
std::string_view content_type(std::string_view name);

}  // namespace dsserve::web
