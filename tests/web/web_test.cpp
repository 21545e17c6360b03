#include "web/web.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "core/file.h"
#include "core/json.h"
#include "recipe/recipe.h"

namespace dsserve::web {
namespace {

namespace fs = std::filesystem;

TEST(WebTest, RootServesThePage) {
    std::optional<Asset> page = asset("/");
    ASSERT_TRUE(page.has_value());
    EXPECT_EQ(page->content_type, "text/html; charset=utf-8");
    EXPECT_TRUE(page->body.starts_with("<!doctype html>"));
    EXPECT_EQ(asset("/index.html")->body.data(), page->body.data());
    EXPECT_EQ(asset("/?theme=dark")->body.data(), page->body.data());
    EXPECT_EQ(asset("/static/index.html")->body.data(), page->body.data());
}

// Every file of web/ is embedded byte for byte, with the type a browser needs to run it.
TEST(WebTest, EveryWebFileIsEmbedded) {
    std::set<std::string> on_disk;
    for (const fs::directory_entry& entry : fs::directory_iterator(DSSERVE_WEB_DIR)) {
        if (!entry.is_regular_file()) {
            continue;
        }
        std::string name = entry.path().filename().string();
        on_disk.insert(name);
        std::optional<Asset> file = asset("/static/" + name);
        ASSERT_TRUE(file.has_value()) << name;
        EXPECT_EQ(file->body, read_file(entry.path())) << name;
    }
    EXPECT_TRUE(on_disk.contains("index.html"));
    EXPECT_TRUE(on_disk.contains("generator.js"));
    std::vector<std::string_view> names = asset_names();
    EXPECT_EQ(names.size(), on_disk.size() + 1);  // + recipe-table.json
    EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
    EXPECT_EQ(asset("/static/generator.js")->content_type, "text/javascript; charset=utf-8");
    EXPECT_EQ(asset("/static/style.css")->content_type, "text/css; charset=utf-8");
}

// The page's table is the generator's, made by the build from src/recipe.
TEST(WebTest, RecipeTableIsTheGenerators) {
    std::optional<Asset> table = asset("/static/recipe-table.json");
    ASSERT_TRUE(table.has_value());
    EXPECT_EQ(table->content_type, "application/json");
    EXPECT_EQ(Json::parse(table->body), recipe::table_json());
}

TEST(WebTest, UnknownPathsAreNotServed) {
    EXPECT_FALSE(asset("").has_value());
    EXPECT_FALSE(asset("/v1/models").has_value());
    EXPECT_FALSE(asset("/static/").has_value());
    EXPECT_FALSE(asset("/static/nope.js").has_value());
    EXPECT_FALSE(asset("/static/../CMakeLists.txt").has_value());
    EXPECT_FALSE(asset("/static/web/index.html").has_value());
    EXPECT_FALSE(asset("/generator.js").has_value());
}

TEST(WebTest, ContentTypes) {
    EXPECT_EQ(content_type("a.json"), "application/json");
    EXPECT_EQ(content_type("a.svg"), "image/svg+xml");
    EXPECT_EQ(content_type("a.bin"), "application/octet-stream");
    EXPECT_EQ(content_type("js"), "application/octet-stream");
}

}  // namespace
}  // namespace dsserve::web
