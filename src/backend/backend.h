// Choosing the device the model runs on. Today: the CPU backend; "cuda" is refused with a message
// saying that this build has no CUDA backend.
#pragma once

#include <memory>
#include <string>

#include "model/ops.h"

namespace dsserve::backend {

struct BackendOptions {
    std::string device = "cpu";
    std::size_t num_threads = 0;  // 0: all cores (or DSSERVE_NUM_THREADS)
};

std::unique_ptr<model::Ops> make_backend(const BackendOptions& options);

}  // namespace dsserve::backend
