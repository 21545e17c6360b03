#include "cli/model_path.h"

#include <unistd.h>

#include <cstdlib>

#include "core/error.h"
#include "core/log.h"
#include "model/make_model.h"

namespace dsserve::cli {
namespace {

std::filesystem::path cache_dir() {
    if (const char* dir = std::getenv("DSSERVE_CACHE_DIR"); dir && *dir) {
        return dir;
    }
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) {
        return std::filesystem::path(xdg) / "dsserve";
    }
    const char* home = std::getenv("HOME");
    DS_CHECK(home && *home, "no --model-path given and neither DSSERVE_CACHE_DIR nor HOME is set");
    return std::filesystem::path(home) / ".cache" / "dsserve";
}

}  // namespace

std::filesystem::path resolve_model_path(const std::string& given) {
    if (!given.empty()) {
        return given;
    }
    namespace fs = std::filesystem;
    // Versioned by name: a change to the tiny preset must change this folder name.
    fs::path dir = cache_dir() / "models" / "tiny-v1";
    if (fs::exists(dir / "config.json")) {
        return dir;
    }
    log::info("no --model-path: writing the embedded tiny model to ", dir.string());
    fs::path tmp = dir.string() + ".tmp-" + std::to_string(::getpid());
    fs::remove_all(tmp);
    model::MakeModelOptions options;
    options.output = tmp;
    options.config = model::preset_config("tiny", 0);
    model::make_model(options);
    std::error_code ec;
    fs::rename(tmp, dir, ec);
    if (ec) {  // another process won the race; use its copy
        fs::remove_all(tmp);
        DS_CHECK(fs::exists(dir / "config.json"), "cannot create ", dir.string(), ": ",
                 ec.message());
    }
    return dir;
}

}  // namespace dsserve::cli
