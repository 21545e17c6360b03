#include <set>

#include "cli/commands.h"

namespace dsserve::cli {

void expand_abbreviations(CLI::App& app, std::vector<std::string>& args) {
    if (args.empty()) {
        return;
    }
    CLI::App* sub = nullptr;
    for (CLI::App* s : app.get_subcommands({})) {
        if (s->get_name() == args[0]) {
            sub = s;
        }
    }
    if (sub == nullptr) {
        return;
    }
    std::vector<std::string> names;
    for (const CLI::Option* opt : sub->get_options()) {
        for (const auto& n : opt->get_lnames()) {
            names.push_back(n);
        }
    }
    for (std::size_t i = 1; i < args.size(); ++i) {
        std::string& arg = args[i];
        if (arg.size() <= 2 || arg.compare(0, 2, "--") != 0) {
            continue;
        }
        auto eq = arg.find('=');
        std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
        if (std::find(names.begin(), names.end(), name) != names.end()) {
            continue;
        }
        std::set<const CLI::Option*> owners;
        std::string expansion;
        for (const CLI::Option* opt : sub->get_options()) {
            for (const auto& n : opt->get_lnames()) {
                if (n.compare(0, name.size(), name) == 0) {
                    if (owners.insert(opt).second) {
                        expansion = n;
                    }
                }
            }
        }
        if (owners.size() == 1) {
            arg = "--" + expansion + (eq == std::string::npos ? "" : arg.substr(eq));
        }
    }
}

}  // namespace dsserve::cli
