// Any bytes as a safetensors file: the header parser must return or throw dsserve::Error, never
// crash or read out of bounds; whatever it accepts must lie inside the file.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "core/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        auto header = dsserve::parse_safetensors_header({data, size}, "fuzz");
        for (const auto& t : header.tensors) {
            if (header.data_offset + t.end > size) {
                __builtin_trap();
            }
        }
    } catch (const dsserve::Error&) {
    }
    return 0;
}
