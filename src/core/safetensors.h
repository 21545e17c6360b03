// Safetensors reading and writing (https://github.com/huggingface/safetensors, format section):
// 8-byte little-endian header length, a JSON header mapping tensor names to dtype, shape and
// [begin, end) byte offsets into the data section that follows, then the data.
// Every offset, dtype and shape is checked before a byte of data is touched, so a truncated or
// hostile file is an Error naming the file and tensor, never an out-of-bounds read.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/dtype.h"
#include "core/file.h"

namespace dsserve {

struct TensorInfo {
    std::string name;
    DType dtype = DType::kF32;
    std::vector<std::int64_t> shape;
    std::uint64_t begin = 0;  // offsets into the data section
    std::uint64_t end = 0;

    std::int64_t numel() const;
};

struct SafetensorsHeader {
    std::vector<TensorInfo> tensors;  // in offset order
    std::map<std::string, std::string> metadata;
    std::uint64_t data_offset = 0;  // where the data section starts in the file
};

// Parses and validates the header of a whole safetensors file held in memory. `file_name` only
// labels error messages.
SafetensorsHeader parse_safetensors_header(std::span<const std::uint8_t> file,
                                           std::string_view file_name);

class SafetensorsFile {
public:
    explicit SafetensorsFile(const std::filesystem::path& path);

    const std::filesystem::path& path() const { return map_.path(); }
    const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
    const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
    const TensorInfo* find(std::string_view name) const;
    std::span<const std::uint8_t> bytes(const TensorInfo& info) const;

private:
    MappedFile map_;
    SafetensorsHeader header_;
    std::unordered_map<std::string, std::size_t> index_;
};

// A checkpoint directory: one model.safetensors, or shards listed by model.safetensors.index.json.
class Checkpoint {
public:
    explicit Checkpoint(const std::filesystem::path& dir);

    struct Ref {
        const SafetensorsFile* file;
        const TensorInfo* info;
        std::span<const std::uint8_t> bytes() const { return file->bytes(*info); }
    };
    const Ref* find(std::string_view name) const;
    // Like find, but throws an Error naming the tensor and the directory when it is missing.
    const Ref& at(std::string_view name) const;
    std::vector<std::string> names() const;
    const std::filesystem::path& dir() const { return dir_; }
    std::uint64_t total_bytes() const;

private:
    std::filesystem::path dir_;
    std::vector<std::unique_ptr<SafetensorsFile>> files_;
    std::unordered_map<std::string, Ref> refs_;
};

class SafetensorsWriter {
public:
    void add(std::string name, DType dtype, std::vector<std::int64_t> shape,
             std::vector<std::uint8_t> data);
    void set_metadata(std::string key, std::string value);
    std::uint64_t data_bytes() const { return data_bytes_; }
    bool empty() const { return entries_.empty(); }
    std::vector<std::string> names() const;
    void write(const std::filesystem::path& path) const;

private:
    struct Entry {
        std::string name;
        DType dtype;
        std::vector<std::int64_t> shape;
        std::vector<std::uint8_t> data;
    };
    std::vector<Entry> entries_;
    std::map<std::string, std::string> metadata_;
    std::uint64_t data_bytes_ = 0;
};

}  // namespace dsserve
