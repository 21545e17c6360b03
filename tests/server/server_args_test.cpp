#include "server/server_args.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "backend/backend.h"

namespace dsserve::server {
namespace {

bool any_contains(const std::vector<std::string>& lines, const std::string& text) {
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string& l) { return l.find(text) != std::string::npos; });
}

// SGLang's deployment commands pass --kv-cache-dtype bf16 on Hopper: accepted silently now that
// the cache honours it; FP8 caches are refused at validation.
TEST(ServerArgs, KvCacheDtypesAreAcceptedOrRefusedUpFront) {
    for (const char* dtype : {"auto", "bf16", "bfloat16", "fp32", "float32"}) {
        ServerArgs a;
        a.kv_cache_dtype = dtype;
        EXPECT_FALSE(any_contains(a.validate(), "--kv-cache-dtype")) << dtype;
    }
    for (const char* dtype : {"fp8_e4m3", "fp8_e5m2"}) {
        ServerArgs fp8;
        fp8.kv_cache_dtype = dtype;
        EXPECT_THROW(fp8.validate(), std::exception) << dtype;
    }
}

// GPU tuning flags have no effect on either device, and the warning says why for the device used.
TEST(ServerArgs, GpuFlagsSayWhyTheyHaveNoEffectOnEachDevice) {
    ServerArgs cpu;
    cpu.cuda_graph_max_bs = 64;
    cpu.attention_backend = "nsa";
    cpu.disable_overlap_schedule = true;
    auto w = cpu.validate();
    EXPECT_TRUE(any_contains(w, "--disable-overlap-schedule has no effect on the CPU backend"));
    EXPECT_TRUE(any_contains(
        w,
        "--cuda-graph-max-bs/--disable-cuda-graph tune GPU decode steps and have no effect on "
        "the CPU"));
    EXPECT_EQ(cpu.cuda_graph_batch(), 0);
    EXPECT_TRUE(any_contains(w, "--attention-backend nsa tunes GPU kernels"));
    if (!backend::has_cuda_backend()) {
        GTEST_SKIP() << "built without the CUDA backend";
    }
    ServerArgs gpu = cpu;
    gpu.device = "cuda";
    w = gpu.validate();
    EXPECT_FALSE(any_contains(w, "--cuda-graph-max-bs"));  // it takes effect there
    EXPECT_EQ(gpu.cuda_graph_batch(), 64);
    EXPECT_TRUE(any_contains(w, "--attention-backend nsa has no effect: the CUDA backend has one"));
    EXPECT_FALSE(any_contains(w, "CPU backend"));
    // On the GPU it turns the overlap schedule off, which is no warning.
    EXPECT_FALSE(any_contains(w, "--disable-overlap-schedule"));
}

// The decode batch recorded as CUDA graphs: the default on a GPU, the flag, never more than can
// run at once, none when disabled.
TEST(ServerArgs, CudaGraphBatch) {
    ServerArgs a;
    a.device = "cuda";
    EXPECT_EQ(a.cuda_graph_batch(), ServerArgs::kDefaultCudaGraphMaxBs);
    a.cuda_graph_max_bs = 48;
    EXPECT_EQ(a.cuda_graph_batch(), 48);
    a.max_running_requests = 16;
    EXPECT_EQ(a.cuda_graph_batch(), 16);
    a.disable_cuda_graph = true;
    EXPECT_EQ(a.cuda_graph_batch(), 0);
    ServerArgs negative;
    negative.cuda_graph_max_bs = -1;
    EXPECT_THROW(negative.validate(), std::exception);
}

}  // namespace
}  // namespace dsserve::server
