// dsserve_recipe_table OUT.json: writes recipe::table_json() for the web page (a build step).
#include <cstdio>
#include <exception>

#include "core/error.h"
#include "core/file.h"
#include "recipe/recipe.h"

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: dsserve_recipe_table OUT.json\n");
        return 2;
    }
    try {
        dsserve::write_file(argv[1], dsserve::recipe::table_json().dump() + "\n");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "dsserve_recipe_table: %s\n", e.what());
        return 1;
    }
    return 0;
}
