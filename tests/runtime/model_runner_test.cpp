// --kv-cache-dtype's resolution: what "auto" means on each device and precision.
#include "runtime/model_runner.h"

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"

namespace dsserve::runtime {
namespace {

backend::BackendOptions on(const char* device, const char* precision = "auto") {
    backend::BackendOptions b;
    b.device = device;
    b.precision = precision;
    return b;
}

TEST(KvCacheStorage, AutoIsBf16OnAGpuAndFloat32WhereFloat32IsThePoint) {
    EXPECT_EQ(kv_cache_storage("auto", on("cuda")), model::Storage::bf16);
    EXPECT_EQ(kv_cache_storage("auto", on("cuda:1")), model::Storage::bf16);
    EXPECT_EQ(kv_cache_storage("auto", on("cuda", "fp32")), model::Storage::f32);
    EXPECT_EQ(kv_cache_storage("auto", on("cpu")), model::Storage::f32);
}

TEST(KvCacheStorage, ExplicitChoicesHoldOnEveryDeviceAndFp8IsRefused) {
    for (const char* device : {"cpu", "cuda"}) {
        EXPECT_EQ(kv_cache_storage("bf16", on(device)), model::Storage::bf16);
        EXPECT_EQ(kv_cache_storage("bfloat16", on(device)), model::Storage::bf16);
        EXPECT_EQ(kv_cache_storage("fp32", on(device)), model::Storage::f32);
        EXPECT_EQ(kv_cache_storage("float32", on(device)), model::Storage::f32);
    }
    try {
        kv_cache_storage("fp8_e4m3", on("cuda"));
        FAIL() << "fp8 accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("FP8 KV cache is not implemented"), std::string::npos)
            << e.what();
    }
    EXPECT_THROW(kv_cache_storage("int4", on("cpu")), Error);
}

}  // namespace
}  // namespace dsserve::runtime
