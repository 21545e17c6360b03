// Chooses and runs the prompt builder for a model, as SGLang does for DeepSeek checkpoints: an
// explicit chat template file wins; else the `chat_template` of the model's tokenizer_config.json
// (V3.2-Exp and older checkpoints); else, with no template at all (V3.2 and Speciale), the V3.2
// encoder.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "chat/chat_request.h"
#include "chat/jinja/template.h"

namespace dsserve::chat {

class ChatPromptBuilder {
public:
    // Reads `model_dir`/tokenizer_config.json; `template_path` overrides its chat_template.
    static ChatPromptBuilder from_model_dir(
        const std::filesystem::path& model_dir,
        const std::optional<std::filesystem::path>& template_path = std::nullopt);

    // Builds from a tokenizer_config.json object and an optional template source.
    ChatPromptBuilder(const Json& tokenizer_config,
                      const std::optional<std::string>& template_source);

    // The prompt text for the request (the continue_final_message prefix included).
    std::string build(const ChatRequest& request) const;

    bool uses_jinja() const { return jinja_ != nullptr; }

private:
    std::shared_ptr<const jinja::Template> jinja_;
    Json special_tokens_ = Json::object();  // bos_token, eos_token, ... for the template
};

}  // namespace dsserve::chat
