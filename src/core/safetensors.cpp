#include "core/safetensors.h"

#include <algorithm>
#include <cstring>
#include <fstream>

#include "core/error.h"
#include "core/json.h"

namespace dsserve {
namespace {

// Larger headers are certainly not checkpoints; the cap keeps a hostile length from allocating.
constexpr std::uint64_t kMaxHeaderBytes = 100ull << 20;

std::uint64_t read_le64(const std::uint8_t* p) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) {
        v = (v << 8) | p[i];
    }
    return v;
}

}  // namespace

std::int64_t TensorInfo::numel() const {
    std::int64_t n = 1;
    for (std::int64_t d : shape) {
        n *= d;
    }
    return n;
}

SafetensorsHeader parse_safetensors_header(std::span<const std::uint8_t> file,
                                           std::string_view file_name) {
    DS_CHECK(file.size() >= 8, file_name, ": truncated safetensors file (", file.size(),
             " bytes, no header length)");
    std::uint64_t header_len = read_le64(file.data());
    DS_CHECK(header_len <= kMaxHeaderBytes, file_name, ": header length ", header_len,
             " is implausible");
    DS_CHECK(header_len <= file.size() - 8, file_name, ": truncated safetensors file (header of ",
             header_len, " bytes, file has ", file.size(), ")");
    std::string_view text(reinterpret_cast<const char*>(file.data() + 8), header_len);
    Json json = Json::parse(text, nullptr, false);
    DS_CHECK(!json.is_discarded(), file_name, ": header is not valid JSON");
    DS_CHECK(json.is_object(), file_name, ": header is not a JSON object");

    SafetensorsHeader header;
    header.data_offset = 8 + header_len;
    const std::uint64_t data_size = file.size() - header.data_offset;
    for (const auto& [name, entry] : json.items()) {
        if (name == "__metadata__") {
            DS_CHECK(entry.is_object(), file_name, ": __metadata__ is not an object");
            for (const auto& [k, v] : entry.items()) {
                DS_CHECK(v.is_string(), file_name, ": __metadata__ value of ", k,
                         " is not a string");
                header.metadata[k] = v.get<std::string>();
            }
            continue;
        }
        DS_CHECK(entry.is_object(), file_name, ": tensor ", name, ": entry is not an object");
        TensorInfo info;
        info.name = name;
        auto dtype_it = entry.find("dtype");
        DS_CHECK(dtype_it != entry.end() && dtype_it->is_string(), file_name, ": tensor ", name,
                 ": missing dtype");
        auto dtype = parse_dtype(dtype_it->get<std::string>());
        DS_CHECK(dtype.has_value(), file_name, ": tensor ", name, ": unsupported dtype ",
                 dtype_it->get<std::string>());
        info.dtype = *dtype;
        auto shape_it = entry.find("shape");
        DS_CHECK(shape_it != entry.end() && shape_it->is_array(), file_name, ": tensor ", name,
                 ": missing shape");
        DS_CHECK(shape_it->size() <= 8, file_name, ": tensor ", name, ": too many dimensions");
        std::uint64_t numel = 1;
        for (const auto& d : *shape_it) {
            DS_CHECK(d.is_number_unsigned(), file_name, ": tensor ", name,
                     ": shape entries must be non-negative integers");
            std::uint64_t dim = d.get<std::uint64_t>();
            DS_CHECK(dim <= (1ull << 40) && (dim == 0 || numel <= (1ull << 62) / dim), file_name,
                     ": tensor ", name, ": shape is too large");
            numel *= dim;
            info.shape.push_back(static_cast<std::int64_t>(dim));
        }
        auto off_it = entry.find("data_offsets");
        DS_CHECK(off_it != entry.end() && off_it->is_array() && off_it->size() == 2 &&
                     (*off_it)[0].is_number_unsigned() && (*off_it)[1].is_number_unsigned(),
                 file_name, ": tensor ", name, ": data_offsets must be two non-negative integers");
        info.begin = (*off_it)[0].get<std::uint64_t>();
        info.end = (*off_it)[1].get<std::uint64_t>();
        DS_CHECK(info.begin <= info.end && info.end <= data_size, file_name, ": tensor ", name,
                 ": data_offsets [", info.begin, ", ", info.end, ") fall outside the ", data_size,
                 "-byte data section (truncated or corrupt file)");
        std::uint64_t expected = numel * dtype_size(info.dtype);
        DS_CHECK(info.end - info.begin == expected, file_name, ": tensor ", name, ": ",
                 info.end - info.begin, " bytes of data for shape and dtype ",
                 dtype_name(info.dtype), " that need ", expected);
        header.tensors.push_back(std::move(info));
    }
    std::sort(header.tensors.begin(), header.tensors.end(),
              [](const TensorInfo& a, const TensorInfo& b) { return a.begin < b.begin; });
    for (std::size_t i = 1; i < header.tensors.size(); ++i) {
        const auto& prev = header.tensors[i - 1];
        const auto& cur = header.tensors[i];
        DS_CHECK(cur.begin >= prev.end || cur.begin == cur.end || prev.begin == prev.end, file_name,
                 ": tensors ", prev.name, " and ", cur.name, " overlap");
    }
    return header;
}

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : map_(path) {
    header_ = parse_safetensors_header({map_.data(), map_.size()}, path.string());
    for (std::size_t i = 0; i < header_.tensors.size(); ++i) {
        index_.emplace(header_.tensors[i].name, i);
    }
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
    auto it = index_.find(std::string(name));
    return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

std::span<const std::uint8_t> SafetensorsFile::bytes(const TensorInfo& info) const {
    return {map_.data() + header_.data_offset + info.begin, info.end - info.begin};
}

Checkpoint::Checkpoint(const std::filesystem::path& dir) : dir_(dir) {
    namespace fs = std::filesystem;
    DS_CHECK(fs::is_directory(dir), "model path ", dir.string(), " is not a directory");
    std::vector<std::string> shard_names;
    fs::path index_path = dir / "model.safetensors.index.json";
    Json weight_map;
    if (fs::exists(index_path)) {
        Json index = Json::parse(read_file(index_path), nullptr, false);
        DS_CHECK(!index.is_discarded() && index.is_object() && index.contains("weight_map") &&
                     index["weight_map"].is_object(),
                 index_path.string(), ": not a safetensors index (no weight_map object)");
        weight_map = index["weight_map"];
        for (const auto& [tensor, shard] : weight_map.items()) {
            DS_CHECK(shard.is_string(), index_path.string(), ": shard of ", tensor,
                     " is not a string");
            std::string s = shard.get<std::string>();
            DS_CHECK(s.find('/') == std::string::npos && s != ".." && !s.empty(),
                     index_path.string(), ": shard name ", s, " must be a file in the directory");
            if (std::find(shard_names.begin(), shard_names.end(), s) == shard_names.end()) {
                shard_names.push_back(s);
            }
        }
    } else if (fs::exists(dir / "model.safetensors")) {
        shard_names.push_back("model.safetensors");
    } else {
        fail("no model.safetensors or model.safetensors.index.json in ", dir.string());
    }
    std::sort(shard_names.begin(), shard_names.end());
    for (const auto& shard : shard_names) {
        files_.push_back(std::make_unique<SafetensorsFile>(dir / shard));
        const SafetensorsFile* file = files_.back().get();
        for (const auto& info : file->tensors()) {
            auto [it, inserted] = refs_.emplace(info.name, Ref{file, &info});
            DS_CHECK(inserted, "tensor ", info.name, " appears in both ",
                     it->second.file->path().filename().string(), " and ", shard);
        }
    }
    for (const auto& [tensor, shard] : weight_map.items()) {
        const Ref* ref = find(tensor);
        DS_CHECK(ref != nullptr, "index lists ", tensor, " in ", shard.get<std::string>(),
                 " but that file does not hold it");
        DS_CHECK(ref->file->path().filename() == shard.get<std::string>(), "index lists ", tensor,
                 " in ", shard.get<std::string>(), " but it is in ",
                 ref->file->path().filename().string());
    }
}

const Checkpoint::Ref* Checkpoint::find(std::string_view name) const {
    auto it = refs_.find(std::string(name));
    return it == refs_.end() ? nullptr : &it->second;
}

const Checkpoint::Ref& Checkpoint::at(std::string_view name) const {
    const Ref* ref = find(name);
    DS_CHECK(ref != nullptr, "checkpoint ", dir_.string(), " has no tensor ", name);
    return *ref;
}

std::vector<std::string> Checkpoint::names() const {
    std::vector<std::string> out;
    out.reserve(refs_.size());
    for (const auto& [name, ref] : refs_) {
        out.push_back(name);
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::uint64_t Checkpoint::total_bytes() const {
    std::uint64_t total = 0;
    for (const auto& [name, ref] : refs_) {
        total += ref.info->end - ref.info->begin;
    }
    return total;
}

void SafetensorsWriter::add(std::string name, DType dtype, std::vector<std::int64_t> shape,
                            std::vector<std::uint8_t> data) {
    std::int64_t numel = 1;
    for (auto d : shape) {
        numel *= d;
    }
    DS_ASSERT(static_cast<std::uint64_t>(numel) * dtype_size(dtype) == data.size(), name);
    data_bytes_ += data.size();
    entries_.push_back({std::move(name), dtype, std::move(shape), std::move(data)});
}

void SafetensorsWriter::set_metadata(std::string key, std::string value) {
    metadata_[std::move(key)] = std::move(value);
}

std::vector<std::string> SafetensorsWriter::names() const {
    std::vector<std::string> out;
    for (const auto& e : entries_) {
        out.push_back(e.name);
    }
    return out;
}

void SafetensorsWriter::write(const std::filesystem::path& path) const {
    Json header = Json::object();
    if (!metadata_.empty()) {
        header["__metadata__"] = metadata_;
    }
    std::uint64_t offset = 0;
    for (const auto& e : entries_) {
        header[e.name] = {{"dtype", dtype_name(e.dtype)},
                          {"shape", e.shape},
                          {"data_offsets", {offset, offset + e.data.size()}}};
        offset += e.data.size();
    }
    std::string text = header.dump();
    // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
    while ((text.size() + 8) % 8 != 0) {
        text.push_back(' ');
    }
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    DS_CHECK(out.good(), "cannot create ", path.string());
    std::uint8_t len[8];
    std::uint64_t n = text.size();
    for (int i = 0; i < 8; ++i) {
        len[i] = static_cast<std::uint8_t>(n >> (8 * i));
    }
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& e : entries_) {
        out.write(reinterpret_cast<const char*>(e.data.data()),
                  static_cast<std::streamsize>(e.data.size()));
    }
    DS_CHECK(out.good(), "error writing ", path.string());
}

}  // namespace dsserve
