#include "parsers/output_parser.h"

#include <utility>

#include "core/error.h"
#include "parsers/text.h"

namespace dsserve::parsers {
namespace {

bool parser_set(std::string_view name) {
    return !name.empty() && name != "none";
}

// Appends a call item, merging consecutive argument fragments of one call.
void append_call_item(std::vector<ToolCallDelta>& items, ToolCallDelta item) {
    if (!item.name.has_value() && !items.empty() && items.back().index == item.index &&
        !items.back().name.has_value()) {
        items.back().arguments += item.arguments;
        return;
    }
    items.push_back(std::move(item));
}

}  // namespace

OutputParser::OutputParser(OutputParserOptions options) {
    check_reasoning_parser_name(options.reasoning_parser);
    check_tool_parser_name(options.tool_parser);
    if (parser_set(options.reasoning_parser)) {
        reasoning_.emplace(options.thinking, options.stream_reasoning);
    }
    if (parser_set(options.tool_parser)) {
        tools_ = make_tool_parser(options.tool_parser, std::move(options.tool_names));
    }
}

ParsedDelta OutputParser::push(std::string_view text) {
    DS_ASSERT(!finished_, "push after finish");
    return run(text, /*at_end=*/false);
}

ParsedDelta OutputParser::finish() {
    DS_ASSERT(!finished_, "finish called twice");
    ParsedDelta delta = run({}, /*at_end=*/true);
    finished_ = true;
    return delta;
}

std::string OutputParser::take_complete(std::string& carry, std::string text, bool at_end) {
    if (!carry.empty()) {
        text.insert(0, carry);
        carry.clear();
    }
    if (!at_end) {
        size_t cut = utf8_complete_prefix(text);
        carry.assign(text, cut);
        text.resize(cut);
    }
    return text;
}

ParsedDelta OutputParser::run(std::string_view text, bool at_end) {
    ReasoningDelta split;
    if (reasoning_) {
        split = reasoning_->push(text);
        if (at_end) {
            ReasoningDelta rest = reasoning_->finish();
            split.reasoning += rest.reasoning;
            split.content += rest.content;
        }
    } else {
        split.content.assign(text);
    }
    ToolDelta tools;
    if (tools_) {
        tools = tools_->push(split.content);
        if (at_end) {
            ToolDelta rest = tools_->finish();
            tools.content += rest.content;
            for (ToolCallDelta& item : rest.calls) {
                append_call_item(tools.calls, std::move(item));
            }
        }
    } else {
        tools.content = std::move(split.content);
    }

    ParsedDelta delta;
    delta.reasoning_content = take_complete(reasoning_carry_, std::move(split.reasoning), at_end);
    delta.content = take_complete(content_carry_, std::move(tools.content), at_end);
    for (ToolCallDelta& item : tools.calls) {
        auto index = static_cast<size_t>(item.index);
        if (item.name.has_value()) {
            has_tool_calls_ = true;
        }
        if (argument_carry_.size() <= index) {
            argument_carry_.resize(index + 1);
        }
        item.arguments = take_complete(argument_carry_[index], std::move(item.arguments), at_end);
        if (item.name.has_value() || !item.arguments.empty()) {
            append_call_item(delta.tool_calls, std::move(item));
        }
    }
    if (at_end) {
        // Bytes of an invalid UTF-8 tail held for a call that sent nothing more.
        for (size_t index = 0; index < argument_carry_.size(); ++index) {
            if (!argument_carry_[index].empty()) {
                append_call_item(delta.tool_calls,
                                 ToolCallDelta{static_cast<int>(index), std::nullopt, std::nullopt,
                                               std::exchange(argument_carry_[index], {})});
            }
        }
    }
    return delta;
}

ParsedMessage OutputParser::parse(std::string_view text, const OutputParserOptions& options) {
    OutputParser parser(options);
    StreamAssembler assembler;
    assembler.add(parser.push(text));
    assembler.add(parser.finish());
    return assembler.message();
}

void StreamAssembler::add(const ParsedDelta& delta) {
    reasoning_ += delta.reasoning_content;
    content_ += delta.content;
    for (const ToolCallDelta& item : delta.tool_calls) {
        auto index = static_cast<size_t>(item.index);
        if (item.name.has_value()) {
            DS_ASSERT(index == calls_.size(), "call ", index, " announced after ", calls_.size());
            calls_.push_back(ToolCall{item.index, item.id.value_or(""), *item.name, ""});
        }
        DS_ASSERT(index < calls_.size(), "arguments for unannounced call ", index);
        calls_[index].arguments += item.arguments;
    }
}

ParsedMessage StreamAssembler::message() const {
    ParsedMessage message;
    message.content = content_;
    if (!reasoning_.empty()) {
        message.reasoning_content = reasoning_;
    }
    message.tool_calls = calls_;
    return message;
}

std::string rewrite_finish_reason(std::string_view finish_reason, bool has_tool_calls) {
    if (finish_reason == "stop" && has_tool_calls) {
        return "tool_calls";
    }
    return std::string(finish_reason);
}

Json message_to_json(const ParsedMessage& message) {
    Json json = Json::object();
    json["content"] = message.content;
    json["reasoning_content"] =
        message.reasoning_content ? Json(*message.reasoning_content) : Json(nullptr);
    if (message.tool_calls.empty()) {
        json["tool_calls"] = nullptr;
    } else {
        Json calls = Json::array();
        for (const ToolCall& call : message.tool_calls) {
            calls.push_back({{"id", call.id},
                             {"index", call.index},
                             {"type", "function"},
                             {"function", {{"name", call.name}, {"arguments", call.arguments}}}});
        }
        json["tool_calls"] = std::move(calls);
    }
    return json;
}

}  // namespace dsserve::parsers
