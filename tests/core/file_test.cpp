#include "core/file.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"

namespace dsserve {
namespace {

TEST(FileTest, WriteReadAndMapRoundTrip) {
    auto path = std::filesystem::temp_directory_path() / "dsserve_file_test.bin";
    write_file(path, std::string("abc\0def", 7));
    EXPECT_EQ(read_file(path), std::string("abc\0def", 7));
    MappedFile map(path);
    ASSERT_EQ(map.size(), 7u);
    EXPECT_EQ(map.data()[4], 'd');
    MappedFile moved = std::move(map);
    EXPECT_EQ(moved.size(), 7u);
    std::filesystem::remove(path);
}

TEST(FileTest, MissingFileNamesPath) {
    try {
        MappedFile map("/nonexistent/dsserve/file");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent/dsserve/file"), std::string::npos);
    }
    EXPECT_THROW(read_file("/nonexistent/dsserve/file"), Error);
}

}  // namespace
}  // namespace dsserve
