#include "backend/backend.h"

#include "backend/cpu/cpu_ops.h"
#include "core/error.h"
#include "core/thread_pool.h"
#ifdef DSSERVE_HAVE_CUDA
#include "backend/cuda/cuda_ops.h"
#endif

namespace dsserve::backend {

std::unique_ptr<model::Ops> make_backend(const BackendOptions& options) {
    DS_CHECK(options.precision == "auto" || options.precision == "fp32", "--precision ",
             options.precision, ": expected auto or fp32");
    if (options.device == "cpu") {
        std::size_t threads =
            options.num_threads ? options.num_threads : ThreadPool::default_threads();
        return std::make_unique<cpu::CpuOps>(threads);
    }
    if (options.device == "cuda" || options.device.starts_with("cuda:")) {
        int index = 0;
        if (options.device.size() > 5) {
            const std::string n = options.device.substr(5);
            DS_CHECK(!n.empty() && n.find_first_not_of("0123456789") == std::string::npos &&
                         n.size() < 4,
                     "--device ", options.device, ": expected cuda or cuda:N");
            index = std::stoi(n);
        }
#ifdef DSSERVE_HAVE_CUDA
        return std::make_unique<cuda::CudaOps>(index, options.precision == "fp32");
#else
        (void)index;
        fail("--device ", options.device,
             ": this build has no CUDA backend (configure with -DDSSERVE_CUDA=ON where nvcc is "
             "installed); use --device cpu");
#endif
    }
    fail("unknown --device '", options.device, "' (expected cpu, cuda or cuda:N)");
}

bool has_cuda_backend() {
#ifdef DSSERVE_HAVE_CUDA
    return true;
#else
    return false;
#endif
}

}  // namespace dsserve::backend
