// A kernel timeline without Nsight Systems: a library the CUDA driver loads into any process
// started with CUDA_INJECTION64_PATH pointing at it. It records, through CUPTI's activity API,
// when each kernel ran on the GPU and when the host called the driver to launch it, and writes
// them at exit as CSV to $DSSERVE_KERNEL_TRACE (host launch calls with
// DSSERVE_KERNEL_TRACE_LAUNCHES=1):
//
//   export CUDA_INJECTION64_PATH=build/libdsserve-kernel-trace.so
//   DSSERVE_KERNEL_TRACE=trace.csv dsserve generate ...
//   python3 bench/scripts/kernel_trace_steps.py trace.csv
//
// Unlike ncu, which runs kernels one at a time, this is the timeline as it happened: launch gaps,
// time the GPU waits for the host, and the overlap programmatic dependent launch gives.
#include <cupti.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

namespace {

struct Row {
    std::uint64_t start, end;
    std::uint32_t correlation;
    bool kernel;  // false: a host launch call
    std::string name;
    unsigned grid, block;
};

std::mutex rows_mutex;
std::vector<Row> rows;

void check(CUptiResult r, const char* what) {
    if (r != CUPTI_SUCCESS) {
        const char* msg = nullptr;
        cuptiGetResultString(r, &msg);
        std::fprintf(stderr, "kernel trace: %s: %s\n", what, msg != nullptr ? msg : "?");
    }
}

constexpr std::size_t kBufferBytes = 8u << 20;

void CUPTIAPI buffer_requested(std::uint8_t** buffer, std::size_t* size, std::size_t* max_records) {
    *buffer = static_cast<std::uint8_t*>(std::aligned_alloc(8, kBufferBytes));
    *size = kBufferBytes;
    *max_records = 0;
}

bool is_launch(std::uint32_t cbid) {
    return cbid == CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel ||
           cbid == CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx;
}

void CUPTIAPI buffer_completed(CUcontext, std::uint32_t, std::uint8_t* buffer, std::size_t,
                               std::size_t valid) {
    std::vector<Row> got;
    CUpti_Activity* record = nullptr;
    while (cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
        if (record->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) {
            const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
            got.push_back({k->start, k->end, k->correlationId, true,
                           k->name != nullptr ? k->name : "",
                           static_cast<unsigned>(k->gridX * k->gridY * k->gridZ),
                           static_cast<unsigned>(k->blockX * k->blockY * k->blockZ)});
        } else if (record->kind == CUPTI_ACTIVITY_KIND_DRIVER) {
            const auto* a = reinterpret_cast<const CUpti_ActivityAPI*>(record);
            if (is_launch(a->cbid)) {
                got.push_back({a->start, a->end, a->correlationId, false, "", 0, 0});
            }
        }
    }
    std::free(buffer);
    const std::lock_guard<std::mutex> lock(rows_mutex);
    rows.insert(rows.end(), got.begin(), got.end());
}

void write_trace() {
    check(cuptiActivityFlushAll(1), "flush");
    const char* path = std::getenv("DSSERVE_KERNEL_TRACE");
    std::FILE* f = std::fopen(path != nullptr ? path : "kernel_trace.csv", "w");
    if (f == nullptr) {
        std::perror("kernel trace");
        return;
    }
    const std::lock_guard<std::mutex> lock(rows_mutex);
    std::fprintf(f, "kind,start_ns,end_ns,correlation,grid,block,name\n");
    for (const Row& r : rows) {
        // Names are mangled C++ and hold commas only inside template arguments: quote them.
        std::fprintf(f, "%s,%llu,%llu,%u,%u,%u,\"%s\"\n", r.kernel ? "kernel" : "launch",
                     static_cast<unsigned long long>(r.start),
                     static_cast<unsigned long long>(r.end), r.correlation, r.grid, r.block,
                     r.name.c_str());
    }
    std::fclose(f);
}

}  // namespace

extern "C" int InitializeInjection() {
    check(cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed), "callbacks");
    check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "kernels");
    // Recording every driver call slows the host several microseconds a launch, enough to make
    // a decode step wait for the host: only on request.
    const char* launches = std::getenv("DSSERVE_KERNEL_TRACE_LAUNCHES");
    if (launches != nullptr && std::strcmp(launches, "1") == 0) {
        check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_DRIVER), "driver calls");
    }
    std::atexit(write_trace);
    return 1;
}
