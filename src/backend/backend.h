// Choosing the device the model runs on: "cpu" (the default), or "cuda" / "cuda:N" in a build
// with the CUDA backend.
#pragma once

#include <memory>
#include <string>

#include "model/ops.h"

namespace dsserve::backend {

struct BackendOptions {
    std::string device = "cpu";
    std::size_t num_threads = 0;  // 0: all cores (or DSSERVE_NUM_THREADS)
    // "auto": weights in the checkpoint's formats where the device computes in them (block FP8
    // on a GPU); "fp32": every weight dequantized to float32, the CPU backend's arithmetic.
    std::string precision = "auto";
};

std::unique_ptr<model::Ops> make_backend(const BackendOptions& options);
bool has_cuda_backend();

}  // namespace dsserve::backend
