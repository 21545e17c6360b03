// dsserve tokenize: encode text to ids or decode ids to text with a model's tokenizer.
//   dsserve tokenize --model-path DIR --text "Hello" [--add-special-tokens]   -> [19923]
//   dsserve tokenize --model-path DIR --file prompt.txt
//   dsserve tokenize --model-path DIR --decode 19923,1 [--keep-special-tokens] -> Hello
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "tokenizer/tokenizer.h"

namespace dsserve::cli {
namespace {

struct TokenizeOptions {
    std::string model_path;
    std::string text;
    std::string file;
    std::string decode;
    bool add_special_tokens = false;
    bool keep_special_tokens = false;
};

std::vector<std::int32_t> parse_ids(const std::string& list) {
    std::vector<std::int32_t> ids;
    std::size_t pos = 0;
    while (pos <= list.size()) {
        std::size_t comma = list.find(',', pos);
        if (comma == std::string::npos) {
            comma = list.size();
        }
        const std::string item = list.substr(pos, comma - pos);
        std::size_t used = 0;
        long long id = 0;
        try {
            id = std::stoll(item, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        while (used < item.size() && item[used] == ' ') {
            ++used;
        }
        DS_CHECK(!item.empty() && used == item.size() && id >= INT32_MIN && id <= INT32_MAX,
                 "--decode: '", item, "' is not a token id (expected a list like 1,2,3)");
        ids.push_back(static_cast<std::int32_t>(id));
        pos = comma + 1;
    }
    return ids;
}

void run(const TokenizeOptions& o) {
    const int inputs = !o.text.empty() + !o.file.empty() + !o.decode.empty();
    DS_CHECK(inputs == 1, "tokenize: give exactly one of --text, --file, --decode");
    const std::vector<std::int32_t> ids =
        o.decode.empty() ? std::vector<std::int32_t>{} : parse_ids(o.decode);
    const auto tok = tokenizer::Tokenizer::load(o.model_path);
    if (!o.decode.empty()) {
        const std::string text = tok.decode(ids, !o.keep_special_tokens);
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fputc('\n', stdout);
        return;
    }
    const std::string input = o.file.empty() ? o.text : read_file(o.file);
    std::printf("%s\n", Json(tok.encode(input, o.add_special_tokens)).dump().c_str());
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
    auto options = std::make_shared<TokenizeOptions>();
    CLI::App* cmd = app.add_subcommand(
        "tokenize", "Encode text to token ids (a JSON list) or decode ids to text");
    cmd->add_option("--model-path", options->model_path,
                    "Directory with tokenizer.json and tokenizer_config.json")
        ->required();
    cmd->add_option("--text", options->text, "Text to encode");
    cmd->add_option("--file", options->file, "File whose contents to encode");
    cmd->add_option("--decode", options->decode, "Comma-separated ids to decode, e.g. 1,2,3");
    cmd->add_flag("--add-special-tokens", options->add_special_tokens,
                  "Add BOS/EOS as tokenizer_config.json asks (add_bos_token, add_eos_token)");
    cmd->add_flag("--keep-special-tokens", options->keep_special_tokens,
                  "With --decode, keep special tokens such as BOS and EOS in the text");
    cmd->callback([options] { run(*options); });
}

}  // namespace dsserve::cli
