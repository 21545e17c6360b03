#include "chat/chat_template.h"

#include "core/error.h"
#include "core/file.h"

namespace dsserve::chat {
namespace {

// tokenizer_config.json writes special tokens either as strings or as AddedToken objects
// ({"__type": "AddedToken", "content": "..."}).
std::optional<std::string> token_text(const Json& config, const char* key) {
    const auto it = config.find(key);
    if (it == config.end()) {
        return std::nullopt;
    }
    if (it->is_string()) {
        return it->get<std::string>();
    }
    if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
        return (*it)["content"].get<std::string>();
    }
    return std::nullopt;
}

}  // namespace

ChatPromptBuilder ChatPromptBuilder::from_model_dir(
    const std::filesystem::path& model_dir,
    const std::optional<std::filesystem::path>& template_path) {
    const auto config_path = model_dir / "tokenizer_config.json";
    Json config = Json::parse(read_file(config_path), nullptr, false);
    DS_CHECK(!config.is_discarded() && config.is_object(), config_path.string(),
             " is not a JSON object");
    std::optional<std::string> source;
    if (template_path) {
        source = read_file(*template_path);
    }
    return ChatPromptBuilder(config, source);
}

ChatPromptBuilder::ChatPromptBuilder(const Json& tokenizer_config,
                                     const std::optional<std::string>& template_source) {
    // transformers passes every special token of the tokenizer to the template.
    for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
        if (auto text = token_text(tokenizer_config, key)) {
            special_tokens_[key] = *text;
        }
    }
    std::optional<std::string> source = template_source;
    if (!source) {
        const auto it = tokenizer_config.find("chat_template");
        if (it != tokenizer_config.end() && it->is_string()) {
            source = it->get<std::string>();
        }
        DS_CHECK(it == tokenizer_config.end() || it->is_string() || it->is_null(),
                 "tokenizer_config.json: only a single string chat_template is supported");
    }
    if (source) {
        jinja_ = std::make_shared<const jinja::Template>(*source);
    }
}

std::string ChatPromptBuilder::build(const ChatRequest& request) const {
    if (!jinja_) {
        return build_dsv32_prompt(request);
    }
    std::optional<std::string> assistant_prefix;
    Json variables = special_tokens_;
    const Json request_variables = jinja_variables(request, &assistant_prefix);
    for (const auto& [key, value] : request_variables.items()) {
        variables[key] = value;
    }
    std::string prompt = jinja_->render(variables);
    if (assistant_prefix) {
        prompt += *assistant_prefix;
    }
    return prompt;
}

}  // namespace dsserve::chat
