#include "core/safetensors.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"

namespace dsserve {
namespace {

namespace fs = std::filesystem;

std::string with_header(const std::string& header, const std::string& data) {
    std::string out(8, '\0');
    std::uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) {
        out[i] = static_cast<char>(n >> (8 * i));
    }
    return out + header + data;
}

SafetensorsHeader parse(const std::string& bytes) {
    return parse_safetensors_header(
        {reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()}, "test.safetensors");
}

void expect_error(const std::string& bytes, const std::string& fragment) {
    try {
        parse(bytes);
        FAIL() << "no error, expected: " << fragment;
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("test.safetensors"), std::string::npos) << e.what();
    }
}

class SafetensorsTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("dsserve_st_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    fs::path dir_;
};

TEST(SafetensorsHeaderTest, ParsesValidHeader) {
    std::string data(12, '\x01');
    auto h = parse(with_header(
        R"({"__metadata__":{"format":"pt"},"b":{"dtype":"BF16","shape":[2,2],"data_offsets":[4,12]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
        data));
    ASSERT_EQ(h.tensors.size(), 2u);
    EXPECT_EQ(h.tensors[0].name, "a");  // sorted by offset
    EXPECT_EQ(h.tensors[1].shape, (std::vector<std::int64_t>{2, 2}));
    EXPECT_EQ(h.metadata.at("format"), "pt");
}

TEST(SafetensorsHeaderTest, RejectsBrokenFiles) {
    expect_error("abc", "truncated");
    expect_error(with_header("{", ""), "not valid JSON");
    expect_error(with_header("[]", ""), "not a JSON object");
    std::string huge(8, '\xff');
    expect_error(huge, "implausible");
    std::string len_only = with_header(R"({})", "");
    len_only[0] = 100;  // claims more header than the file has
    expect_error(len_only, "truncated");
    expect_error(with_header(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", "short"),
                 "outside");
    expect_error(with_header(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})",
                             std::string(16, '\0')),
                 "need 12");
    expect_error(with_header(R"({"w":{"dtype":"Q4","shape":[4],"data_offsets":[0,4]}})",
                             std::string(4, '\0')),
                 "unsupported dtype Q4");
    expect_error(with_header(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})",
                             std::string(4, '\0')),
                 "non-negative");
    expect_error(with_header(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})",
                             std::string(4, '\0')),
                 "outside");
    expect_error(with_header(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", std::string(4, '\0')),
                 "missing dtype");
    expect_error(
        with_header(
            R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
            std::string(12, '\0')),
        "overlap");
    expect_error(
        with_header(
            R"({"w":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,4]}})",
            std::string(4, '\0')),
        "too large");
}

TEST_F(SafetensorsTest, WriterAndShardedCheckpointRoundTrip) {
    SafetensorsWriter a, b;
    a.add("x", DType::kF32, {2}, {0, 0, 128, 63, 0, 0, 0, 64});  // 1.0, 2.0
    b.add("y", DType::kU8, {3}, {7, 8, 9});
    a.write(dir_ / "a.safetensors");
    b.write(dir_ / "b.safetensors");
    write_file(dir_ / "model.safetensors.index.json",
               R"({"weight_map":{"x":"a.safetensors","y":"b.safetensors"}})");
    Checkpoint ckpt(dir_);
    EXPECT_EQ(ckpt.names(), (std::vector<std::string>{"x", "y"}));
    auto y = ckpt.at("y").bytes();
    ASSERT_EQ(y.size(), 3u);
    EXPECT_EQ(y[2], 9);
    float x1;
    std::memcpy(&x1, ckpt.at("x").bytes().data() + 4, 4);
    EXPECT_EQ(x1, 2.0f);
    EXPECT_THROW(ckpt.at("z"), Error);
}

TEST_F(SafetensorsTest, IndexInconsistenciesAreErrors) {
    SafetensorsWriter a;
    a.add("x", DType::kU8, {1}, {1});
    a.write(dir_ / "a.safetensors");
    write_file(dir_ / "model.safetensors.index.json",
               R"({"weight_map":{"x":"a.safetensors","q":"a.safetensors"}})");
    EXPECT_THROW(Checkpoint{dir_}, Error);
    write_file(dir_ / "model.safetensors.index.json", R"({"weight_map":{"x":"../a.safetensors"}})");
    EXPECT_THROW(Checkpoint{dir_}, Error);
    write_file(dir_ / "model.safetensors.index.json",
               R"({"weight_map":{"x":"missing.safetensors"}})");
    EXPECT_THROW(Checkpoint{dir_}, Error);
    fs::remove(dir_ / "model.safetensors.index.json");
    EXPECT_THROW(Checkpoint{dir_}, Error);  // neither index nor model.safetensors
}

TEST_F(SafetensorsTest, TruncatedFileOnDiskNamesFileAndTensor) {
    SafetensorsWriter a;
    a.add("layer.weight", DType::kF32, {4}, std::vector<std::uint8_t>(16, 0));
    a.write(dir_ / "model.safetensors");
    std::string bytes = read_file(dir_ / "model.safetensors");
    write_file(dir_ / "model.safetensors", bytes.substr(0, bytes.size() - 3));
    try {
        Checkpoint ckpt(dir_);
        FAIL();
    } catch (const Error& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
        EXPECT_NE(msg.find("layer.weight"), std::string::npos) << msg;
    }
}

}  // namespace
}  // namespace dsserve
