#include "core/npy.h"

#include <cstring>
#include <regex>
#include <string>

#include "core/error.h"
#include "core/file.h"

namespace dsserve {

void write_npy(const std::filesystem::path& path, std::span<const float> data,
               const std::vector<std::int64_t>& shape) {
    std::string dims;
    for (std::size_t i = 0; i < shape.size(); ++i) {
        dims += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? "," : "");
        if (i + 1 < shape.size()) {
            dims += " ";
        }
    }
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
    // Magic (6) + version (2) + length (2) + header + newline, padded to a multiple of 64.
    std::size_t total = 10 + header.size() + 1;
    header.append((64 - total % 64) % 64, ' ');
    header.push_back('\n');
    std::string out = "\x93NUMPY";
    out.push_back('\x01');
    out.push_back('\x00');
    out.push_back(static_cast<char>(header.size() & 0xff));
    out.push_back(static_cast<char>(header.size() >> 8));
    out += header;
    out.append(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(float));
    write_file(path, out);
}

NpyArray read_npy(const std::filesystem::path& path) {
    std::string bytes = read_file(path);
    DS_CHECK(bytes.size() >= 10 && bytes.compare(0, 6, "\x93NUMPY") == 0, path.string(),
             ": not a .npy file");
    std::size_t header_len = static_cast<unsigned char>(bytes[8]) |
                             (static_cast<std::size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    DS_CHECK(bytes[6] == 1 && 10 + header_len <= bytes.size(), path.string(),
             ": unsupported .npy version or truncated header");
    std::string header = bytes.substr(10, header_len);
    DS_CHECK(header.find("'descr': '<f4'") != std::string::npos &&
                 header.find("'fortran_order': False") != std::string::npos,
             path.string(), ": only little-endian float32 C-order arrays are supported");
    std::smatch m;
    DS_CHECK(std::regex_search(header, m, std::regex(R"('shape': \(([0-9, ]*)\))")), path.string(),
             ": no shape in header");
    NpyArray arr;
    std::string dims = m[1];
    std::size_t count = 1;
    for (std::size_t pos = 0; pos < dims.size();) {
        std::size_t end = dims.find(',', pos);
        std::string d = dims.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
        if (d.find_first_not_of(' ') != std::string::npos) {
            arr.shape.push_back(std::stoll(d));
            count *= static_cast<std::size_t>(arr.shape.back());
        }
        if (end == std::string::npos) {
            break;
        }
        pos = end + 1;
    }
    DS_CHECK(bytes.size() == 10 + header_len + count * 4, path.string(), ": data size mismatch");
    arr.data.resize(count);
    std::memcpy(arr.data.data(), bytes.data() + 10 + header_len, count * 4);
    return arr;
}

}  // namespace dsserve
