#include "backend/backend.h"

#include "backend/cpu/cpu_ops.h"
#include "core/error.h"
#include "core/thread_pool.h"

namespace dsserve::backend {

std::unique_ptr<model::Ops> make_backend(const BackendOptions& options) {
    if (options.device == "cpu") {
        std::size_t threads =
            options.num_threads ? options.num_threads : ThreadPool::default_threads();
        return std::make_unique<cpu::CpuOps>(threads);
    }
    DS_CHECK(options.device != "cuda",
             "--device cuda: this build has no CUDA backend yet; use --device cpu");
    fail("unknown --device '", options.device, "' (expected cpu or cuda)");
}

}  // namespace dsserve::backend
