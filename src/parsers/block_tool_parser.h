// The part both tool-call formats share: prose outside blocks, the block opener, and the
// bookkeeping of announced calls (ids, indices, unknown names). A format implements the inside of a
// block.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "parsers/tool_parser.h"

namespace dsserve::parsers {

class BlockToolParser : public ToolParser {
public:
    ToolDelta push(std::string_view text) final;
    ToolDelta finish() final;

protected:
    // prose_markers[0] opens a block; the others are closing markers that are dropped when they
    // turn up outside a block. All must be views of static strings.
    BlockToolParser(std::vector<std::string_view> prose_markers,
                    std::vector<std::string> known_tools);

    // Reads as much of `text` (the bytes after the block opener not consumed yet) as can be
    // decided without seeing more; returns the bytes consumed and sets *closed when that
    // included the block's closing marker. Must consume nothing it may need again: bytes that
    // could start a marker stay unconsumed until the next call.
    virtual size_t parse_block(std::string_view text, bool* closed) = 0;
    // End of text inside a block, after parse_block consumed what it could; `rest` is what it
    // left. Closes an open call. Only called once a call was announced.
    virtual void finish_block(std::string_view rest) = 0;

    // Announces a call (name whitespace-stripped). Returns false when it is dropped (unknown or
    // empty name); its arguments are then ignored. Either way the block counts as understood.
    bool begin_call(std::string_view name);
    // Arguments of the current call; ignored for a dropped call.
    void call_arguments(std::string_view fragment);
    void end_call() { call_open_ = false; }

private:
    enum class State { kProse, kBlock };

    void emit_prose(std::string_view text);
    void run();

    std::vector<std::string_view> prose_markers_;
    std::vector<std::string> known_tools_;
    State state_ = State::kProse;
    std::string buf_;           // bytes not consumed yet
    std::string held_space_;    // prose whitespace that is dropped if a block follows
    std::string block_raw_;     // a block's bytes until it announces a call (given back if none)
    bool committed_ = false;    // the current block announced a call
    bool after_block_ = false;  // prose follows a block: skip its leading whitespace
    bool any_content_ = false;
    bool call_open_ = false;
    int next_index_ = 0;
    ToolDelta delta_;  // output of the current push/finish
};

}  // namespace dsserve::parsers
