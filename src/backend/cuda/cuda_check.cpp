#include "backend/cuda/cuda_check.h"

#include <cstdio>
#include <cstdlib>

namespace dsserve::backend::cuda {
namespace {

// A plain buffer, not a std::string: it must stay readable during static destruction.
thread_local char last_launch[256] = "(none)";

bool sync_each_launch() {
    static const bool on = [] {
        const char* v = std::getenv("DSSERVE_CUDA_SYNC");
        return v != nullptr && std::string(v) == "1";
    }();
    return on;
}

}  // namespace

void cuda_fatal(cudaError_t error, const std::string& where) {
    std::fprintf(stderr, "dsserve: CUDA error %s (%s) in %s; last kernel launched: %s\n",
                 cudaGetErrorName(error), cudaGetErrorString(error), where.c_str(), last_launch);
    std::fflush(stderr);
    // No destructors: they would call into a broken context and may hang.
    std::_Exit(EXIT_FAILURE);
}

void check_launch(const char* kernel, const std::string& shape, cudaStream_t stream) {
    std::snprintf(last_launch, sizeof last_launch, "%s %s", kernel, shape.c_str());
    check_cuda(cudaGetLastError(), kernel);
    cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    if (sync_each_launch() && cudaStreamIsCapturing(stream, &capturing) == cudaSuccess &&
        capturing == cudaStreamCaptureStatusNone) {  // a recorded launch runs later
        check_cuda(cudaStreamSynchronize(stream), kernel);
    }
}

}  // namespace dsserve::backend::cuda
