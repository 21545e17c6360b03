#include "core/file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace dsserve {

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    DS_CHECK(in.good(), "cannot open ", path.string(), ": ", std::strerror(errno));
    std::ostringstream out;
    out << in.rdbuf();
    DS_CHECK(!in.bad(), "error reading ", path.string());
    return out.str();
}

void write_file(const std::filesystem::path& path, std::string_view data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    DS_CHECK(out.good(), "cannot create ", path.string(), ": ", std::strerror(errno));
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    DS_CHECK(out.good(), "error writing ", path.string());
}

MappedFile::MappedFile(const std::filesystem::path& path) : path_(path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    DS_CHECK(fd >= 0, "cannot open ", path.string(), ": ", std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        int err = errno;
        ::close(fd);
        fail("cannot stat ", path.string(), ": ", std::strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        fail(path.string(), " is not a regular file");
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) {
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        int err = errno;
        ::close(fd);
        DS_CHECK(p != MAP_FAILED, "cannot map ", path.string(), ": ", std::strerror(err));
        data_ = static_cast<const std::uint8_t*>(p);
    } else {
        ::close(fd);
    }
}

MappedFile::~MappedFile() {
    reset();
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)), data_(other.data_), size_(other.size_) {
    other.data_ = nullptr;
    other.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
    if (this != &other) {
        reset();
        path_ = std::move(other.path_);
        data_ = other.data_;
        size_ = other.size_;
        other.data_ = nullptr;
        other.size_ = 0;
    }
    return *this;
}

void MappedFile::reset() {
    if (data_ != nullptr) {
        ::munmap(const_cast<std::uint8_t*>(data_), size_);
    }
    data_ = nullptr;
    size_ = 0;
}

}  // namespace dsserve
