#include "backend/cuda/cuda_ops.h"

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <numeric>
#include <set>
#include <tuple>
#include <type_traits>
#include <utility>

#include "backend/common.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/indexer_fp8.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/mha_prefill.h"
#include "backend/cuda/mla_absorb.h"
#include "backend/cuda/mla_decode.h"
#include "backend/cuda/moe_gemm.h"
#include "backend/cuda/sample.h"
#include "backend/cuda/topk.h"
#include "core/log.h"
#include "model/index_fp8.h"

namespace dsserve::backend::cuda {

using model::Tensor;
using GraphStep = model::Ops::GraphStep;

namespace {

void check_cublas(cublasStatus_t status, const std::string& what) {
    if (status != CUBLAS_STATUS_SUCCESS) {
        std::fprintf(stderr, "dsserve: cuBLAS error %s in %s\n", cublasGetStatusName(status),
                     what.c_str());
        std::fflush(stderr);
        std::_Exit(EXIT_FAILURE);
    }
}

// The storage of a layer's MLA tables (model::Ops::cache_zeros), which latent and rope share.
CacheFormat cache_format(const model::LayerCacheView& cache) {
    for (const Tensor* t : {cache.latent, cache.rope}) {
        DS_ASSERT(t->device == model::Device::cuda, "the MLA cache is not on the device");
        DS_ASSERT(t->storage == model::Storage::f32 || t->storage == model::Storage::bf16,
                  "an MLA cache table is float32 or bfloat16");
    }
    DS_ASSERT(cache.latent->storage == cache.rope->storage,
              "latent and rope tables differ in storage");
    return cache.latent->storage == model::Storage::bf16 ? CacheFormat::bf16 : CacheFormat::f32;
}

Fp8KeyTable key_table(const Tensor& t) {
    DS_ASSERT(t.device == model::Device::cuda && t.storage == model::Storage::fp8_row,
              "an FP8 index-key table was expected");
    return {static_cast<unsigned char*>(t.device_data.get()),
            static_cast<float*>(t.scale_data.get())};
}

float* ptr(const Tensor& t) {
    DS_ASSERT(t.device == model::Device::cuda, "the CUDA backend got a host tensor of shape [",
              t.rows(), ", ", t.cols(), "]");
    DS_ASSERT(t.storage == model::Storage::f32, "a float32 tensor was expected, shape [", t.rows(),
              ", ", t.cols(), "]");
    return t.device_ptr();
}

std::int64_t groups_of(std::int64_t k) {
    return (k + 127) / 128;
}

std::int64_t round_up4(std::int64_t v) {
    return (v + 3) / 4 * 4;
}

int narrow(std::int64_t v) {
    DS_ASSERT(v >= 0 && v <= INT32_MAX, v);
    return static_cast<int>(v);
}

std::int64_t round_up128(std::int64_t v) {
    return (v + 127) / 128 * 128;
}

WeightFormat format_of(const Tensor& w) {
    switch (w.storage) {
        case model::Storage::fp8_block:
            return WeightFormat::fp8_block;
        case model::Storage::bf16:
            return WeightFormat::bf16;
        case model::Storage::f32:
            break;
        case model::Storage::fp8_row:
            DS_ASSERT(false, "FP8 rows (the indexer's key cache) are not a weight");
            break;
    }
    return WeightFormat::f32;
}

// Up to this many rows a product runs in the GEMV kernels. Measured on the H200
// (bench/results/2026-11-28-cuda-decode.md): at one row the GEMV beats the quantizer + cuBLASLt
// pair, from four rows on its float32 activation reads (L1-bound) make it slower. Block-FP8
// weights go through the tensor-core GEMV (gemv_fp8.cu), which reads the weights once per 8
// rows: two passes still beat cuBLASLt's block-scaled matmul, whose tiles are built for reuse.
constexpr std::int64_t kGemvRows = 2;
constexpr std::int64_t kFp8GemvRows = 16;

std::int64_t gemv_rows(WeightFormat format) {
    return format == WeightFormat::fp8_block ? kFp8GemvRows : kGemvRows;
}

// Up to this many token rows MLA's kv_b products run in the absorb kernels (mla_absorb.h), which
// read the stored weight once. Beyond (prefill chunks) kv_b is dequantized to float32 for the
// call (84 MB of traffic for the official shape, about 20 us on an H200) and cuBLAS runs them:
// both do the same float32 multiply-adds, which dominate past a few dozen rows, and there
// cuBLAS's register-blocked GEMM keeps more of the FMA peak than the kernels' single pass over
// token tiles while the dequantization is paid once for all rows. 64 covers decode batches;
// dsserve-cuda-bench times both at 64 rows.
constexpr std::int64_t kAbsorbTokens = 64;
// A causal step takes plain multi-head attention (mha_prefill.h) from CudaOps::set_mha_tokens new
// tokens, when they are at least half of the keys they see (a prefill, not a continuation of a
// long context, whose keys would all have to be expanded for a few queries) and those keys fit
// the expansion buffer (16,384 keys: 1 GiB for 128 heads).
constexpr std::int64_t kMhaMaxKeys = 16384;

// The GEMV view of weight w writing its n columns into y (row stride ldy).
GemvSegment segment_of(const Tensor& w, float* y, std::int64_t ldy) {
    GemvSegment s;
    s.w = w.device_data.get();
    s.scale = static_cast<const float*>(w.scale_data.get());
    s.scale_ld = static_cast<int>(weight_scale_stride(w.cols()));
    s.n = narrow(w.rows());
    s.y = y;
    s.ldy = narrow(ldy);
    return s;
}

// The rows token choice reads exist.
void check_rows(const Tensor& logits, std::span<const std::int64_t> rows) {
    for (std::int64_t r : rows) {
        DS_ASSERT(r >= 0 && r < logits.rows(), "row ", r, " of ", logits.rows());
    }
}

// The draw kernel's form of rows to sample.
std::vector<SampleRow> sample_params(const Tensor& logits,
                                     std::span<const model::RowSampling> rows) {
    std::vector<SampleRow> params;
    params.reserve(rows.size());
    for (const model::RowSampling& r : rows) {
        DS_ASSERT(r.row >= 0 && r.row < logits.rows(), "row ", r.row, " of ", logits.rows());
        params.push_back({r.row, r.temperature, r.top_k, r.top_p, r.min_p, r.canonical});
    }
    return params;
}

}  // namespace

int cuda_device_count() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();  // clear the error so later calls are not blamed for it
        return 0;
    }
    return n;
}

struct CudaOps::Impl {
    int device = 0;
    bool fp32 = false;
    cudaStream_t stream = nullptr;
    cublasHandle_t blas = nullptr;
    cublasLtHandle_t lt = nullptr;
    std::shared_ptr<void> workspace;
    static constexpr std::size_t kWorkspaceBytes = 32u << 20;
    std::mutex place_mutex;  // to_device runs on the loader's threads

    // A prepared FP8 matmul per shape: descriptors and the algorithm the heuristic chose.
    struct Fp8Plan {
        cublasLtMatmulDesc_t desc = nullptr;
        cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
        cublasLtMatmulAlgo_t algo{};
    };
    std::map<std::tuple<std::int64_t, std::int64_t, std::int64_t>, Fp8Plan> fp8_plans;

    // Small host arrays (positions, slots, key lists) go to the device once per distinct
    // content: a step reuses the same positions and slots in every layer.
    // A new array replaces the least recently used one, whose memory stays allocated until the
    // next op begins: an op holds several upload pointers at once (indexer_topk five) and may
    // enqueue kernels reading one after a later upload replaced it.
    struct Upload {
        std::vector<std::byte> host;
        std::shared_ptr<void> device;
        std::uint64_t used = 0;  // upload_clock at the last use
    };
    std::array<Upload, 16> uploads;
    std::uint64_t upload_clock = 0;
    std::vector<std::shared_ptr<void>> replaced_uploads;
    // Host arrays whose content is fixed by the model or by a step's shape (router biases, RoPE
    // frequencies, row lists such as 0..n-1), by content: each is sent once and kept, so a
    // recorded step finds it where it was recorded.
    std::map<std::vector<std::byte>, std::shared_ptr<void>> constants;

    template <typename T>
    const T* constant(std::span<const T> values) {
        if (values.empty()) {
            return nullptr;
        }
        const std::span<const std::byte> bytes = std::as_bytes(values);
        auto [it, fresh] = constants.try_emplace({bytes.begin(), bytes.end()});
        if (fresh) {
            it->second = alloc(bytes.size());
            copy_to_device(it->second.get(), bytes.data(), bytes.size());
        }
        return static_cast<const T*>(it->second.get());
    }
    template <typename T>
    const T* constant(const std::vector<T>& values) {
        return constant(std::span<const T>(values));
    }
    // 0, 1, ..., n - 1.
    const std::int32_t* iota(int n) {
        std::vector<std::int32_t> v(static_cast<std::size_t>(n));
        std::iota(v.begin(), v.end(), 0);
        return constant(v);
    }

    // A graph step (model::Ops::GraphStep): the step's mode and key, and its inputs, sent as it
    // begins into the first block of the arena below, [ids | positions | slots | key offsets |
    // key counts | key table]: every token's visible slots, the table the attention and the
    // indexer read. The ops find ids, positions and slots by the host address the model passes.
    struct GraphState {
        GraphStep mode = GraphStep::eager;
        const void* owner = nullptr;
        int tokens = 0, max_keys = 0;
        std::shared_ptr<void> inputs;
        const std::int32_t* ids_host = nullptr;
        const std::int32_t* positions_host = nullptr;
        const std::int32_t* slots_host = nullptr;
        const std::int32_t *ids = nullptr, *positions = nullptr, *slots = nullptr;
        const std::int32_t *key_offset = nullptr, *key_count = nullptr, *keys = nullptr;
        const char* refused_by = nullptr;  // the op that sent per-step data of its own
        std::vector<std::int32_t> host;    // staging
    } graph;
    using GraphKey = std::tuple<const void*, int, int>;  // owner, tokens, max_keys
    std::map<GraphKey, cudaGraphExec_t> graphs;
    std::set<GraphKey> graphs_ran, graphs_refused;
    GraphKey graph_key() const { return {graph.owner, graph.tokens, graph.max_keys}; }

    // Memory for graph steps: a recorded kernel keeps the addresses it was recorded with, so
    // every replay finds its buffers where they were. A first-fit book over one device buffer,
    // emptied as each graph step begins, so that the same requests in the same order get the
    // same addresses. Past the buffer (only in an unrecorded run, which measures what it needs)
    // requests fall back to the pool, and the buffer grows after the step; a grown buffer
    // outdates every recording, which the next steps of their keys record again.
    struct Arena {
        std::shared_ptr<void> buffer;
        std::size_t capacity = 0, peak = 0;
        std::map<std::size_t, std::size_t> free;  // offset -> bytes, coalesced; the last unbounded
        std::uint64_t generation = 0;

        void reset() {
            ++generation;
            peak = 0;
            free.clear();
            free.emplace(0, SIZE_MAX);
        }
        std::size_t take(std::size_t bytes) {
            auto it = std::find_if(free.begin(), free.end(),
                                   [&](const auto& b) { return b.second >= bytes; });
            const auto [offset, size] = *it;
            free.erase(it);
            if (size > bytes) {
                free.emplace(offset + bytes, size == SIZE_MAX ? SIZE_MAX : size - bytes);
            }
            peak = std::max(peak, offset + bytes);
            return offset;
        }
        void give(std::uint64_t gen, std::size_t offset, std::size_t bytes) {
            if (gen != generation) {
                return;  // from a step before the book was emptied
            }
            auto it = free.emplace(offset, bytes).first;
            if (auto next = std::next(it);
                next != free.end() && offset + it->second == next->first) {
                it->second = next->second == SIZE_MAX ? SIZE_MAX : it->second + next->second;
                free.erase(next);
            }
            if (it != free.begin()) {
                auto prev = std::prev(it);
                if (prev->first + prev->second == it->first) {
                    prev->second = it->second == SIZE_MAX ? SIZE_MAX : prev->second + it->second;
                    free.erase(it);
                }
            }
        }
    };
    std::shared_ptr<Arena> arena = std::make_shared<Arena>();

    void bind() const { check_cuda(cudaSetDevice(device), "cudaSetDevice"); }

    // DSSERVE_CUDA_PROFILE=N: the GPU time of each op (events around every outermost call),
    // logged every N forward passes (a pass ends with a to_host of its logits, or with the
    // synchronize that follows a forward whose logits stay on the device), with the wall
    // time between passes, so that the share the GPU spends waiting for the host shows too.
    int profile_every = 0;
    int op_depth = 0;
    struct Mark {
        const char* op;
        cudaEvent_t begin, end;
    };
    std::vector<Mark> marks;
    std::vector<cudaEvent_t> spare_events;
    std::map<std::string, std::pair<double, long>> op_ms;
    int profiled_passes = 0;
    std::chrono::steady_clock::time_point window_start = std::chrono::steady_clock::now();

    cudaEvent_t take_event() {
        if (spare_events.empty()) {
            cudaEvent_t e = nullptr;
            check_cuda(cudaEventCreate(&e), "cudaEventCreate");
            return e;
        }
        cudaEvent_t e = spare_events.back();
        spare_events.pop_back();
        return e;
    }

    // Outermost ops begun so far (an op may run others inside it): what the FP8 rows below are
    // dated by; and the last one's name.
    std::uint64_t ops_begun = 0;
    const char* current_op = "";

    class OpScope {
    public:
        OpScope(Impl& impl, const char* op) : impl_(impl), op_(op) {
            if (impl_.op_depth++ > 0) {
                return;
            }
            ++impl_.ops_begun;
            impl_.current_op = op;
            impl_.replaced_uploads.clear();  // the ops before have enqueued all their reads
            if (impl_.profile_every > 0 && !impl_.capture->on) {
                begin_ = impl_.take_event();
                check_cuda(cudaEventRecord(begin_, impl_.stream), "cudaEventRecord");
            }
        }
        ~OpScope() {
            if (--impl_.op_depth == 0 && begin_ != nullptr) {
                if (impl_.capture->on) {  // the op began the recording
                    impl_.spare_events.push_back(begin_);
                    return;
                }
                cudaEvent_t end = impl_.take_event();
                check_cuda(cudaEventRecord(end, impl_.stream), "cudaEventRecord");
                impl_.marks.push_back({op_, begin_, end});
            }
        }
        OpScope(const OpScope&) = delete;
        OpScope& operator=(const OpScope&) = delete;

    private:
        Impl& impl_;
        const char* op_;
        cudaEvent_t begin_ = nullptr;
    };
    OpScope op(const char* name) { return OpScope(*this, name); }

    // Token choice on the device: launch(ids) writes n ids into device memory under the op
    // `name`; they come back to the host, the only bytes of the choice that do.
    template <typename Launch>
    std::vector<std::int32_t> ids_to_host(std::size_t n, const char* name, Launch launch) {
        std::vector<std::int32_t> host(n);
        bind();
        std::shared_ptr<void> ids = alloc(n * sizeof(std::int32_t));
        {
            auto timed = op(name);
            launch(static_cast<std::int32_t*>(ids.get()));
        }
        check_cuda(cudaMemcpyAsync(host.data(), ids.get(), n * sizeof(std::int32_t),
                                   cudaMemcpyDeviceToHost, stream),
                   "cudaMemcpyAsync (token ids)");
        check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize (token ids)");
        return host;
    }

    // After a synchronization, or after waiting for a step's tokens while the next step runs
    // (an overlapped engine never synchronizes): books the recorded ops that have finished.
    void collect_profile() {
        if (profile_every == 0 || op_depth != 0) {
            return;
        }
        std::size_t done = 0;
        for (; done < marks.size(); ++done) {
            const Mark& m = marks[done];
            if (cudaEventQuery(m.end) != cudaSuccess) {
                cudaGetLastError();  // cudaErrorNotReady is not an error to report later
                break;
            }
            float ms = 0.0f;
            check_cuda(cudaEventElapsedTime(&ms, m.begin, m.end), "cudaEventElapsedTime");
            auto& [total, calls] = op_ms[m.op];
            total += ms;
            ++calls;
            spare_events.push_back(m.begin);
            spare_events.push_back(m.end);
        }
        marks.erase(marks.begin(), marks.begin() + static_cast<std::ptrdiff_t>(done));
        if (++profiled_passes < profile_every) {
            return;
        }
        const auto now = std::chrono::steady_clock::now();
        const double wall = std::chrono::duration<double, std::milli>(now - window_start).count();
        double gpu = 0.0;
        std::vector<std::pair<double, std::string>> rows;
        for (const auto& [name, v] : op_ms) {
            gpu += v.first;
            rows.emplace_back(v.first, str_cat(name, " ", v.first / profiled_passes, " ms (",
                                               v.second / profiled_passes, " calls)"));
        }
        std::sort(rows.rbegin(), rows.rend());
        std::string table;
        for (const auto& [ms, line] : rows) {
            table += str_cat("\n  ", line);
        }
        log::info("CUDA profile over ", profiled_passes, " passes: wall ", wall / profiled_passes,
                  " ms per pass, GPU busy in ops ", gpu / profiled_passes, " ms per pass", table);
        op_ms.clear();
        profiled_passes = 0;
        window_start = now;
    }

    // Whether a step is being recorded; shared with the deleters of pool memory, which may run
    // then (a tensor of an earlier step dropped by host bookkeeping): a free would be recorded
    // into the step, so it waits for the recording's end.
    struct Capture {
        bool on = false;
        std::vector<void*> deferred_frees;
    };
    std::shared_ptr<Capture> capture = std::make_shared<Capture>();

    // Memory that outlives the op asking for it (weights, caches, tables kept between steps).
    std::shared_ptr<void> alloc(std::size_t bytes) {
        if (bytes == 0) {
            return {};
        }
        DS_ASSERT(!capture->on, "an op allocated lasting memory (", bytes,
                  " bytes) while a step was being recorded");
        void* p = nullptr;
        check_cuda(cudaMallocAsync(&p, bytes, stream), "cudaMallocAsync");
        return std::shared_ptr<void>(p, [s = stream, c = capture](void* q) {
            if (c->on) {
                c->deferred_frees.push_back(q);
            } else {
                cudaFreeAsync(q, s);
            }
        });
    }

    // Memory for the current op or forward pass: in a graph step, from the arena.
    std::shared_ptr<void> transient(std::size_t bytes) {
        if (graph.mode == GraphStep::eager || bytes == 0) {
            return alloc(bytes);
        }
        const std::size_t rounded = (bytes + 255) / 256 * 256;
        const std::size_t offset = arena->take(rounded);
        auto give_back = [book = arena, gen = arena->generation, offset, rounded](void*) {
            book->give(gen, offset, rounded);
        };
        if (offset + rounded <= arena->capacity) {
            return {static_cast<std::byte*>(arena->buffer.get()) + offset, give_back};
        }
        DS_ASSERT(!capture->on, "a recorded step outgrew the memory its run measured");
        std::shared_ptr<void> pooled = alloc(bytes);
        return {pooled.get(), [give_back, pooled](void* p) { give_back(p); }};
    }

    // A device tensor of float32 (or, for cache tables, bfloat16) values.
    Tensor tensor(std::vector<std::int64_t> shape, bool zero,
                  model::Storage storage = model::Storage::f32) {
        Tensor t;
        t.shape = std::move(shape);
        t.device = model::Device::cuda;
        t.storage = storage;
        const std::size_t width = storage == model::Storage::bf16 ? 2 : sizeof(float);
        const auto bytes = static_cast<std::size_t>(t.numel()) * width;
        t.device_data = transient(bytes);
        if (zero && bytes != 0) {
            check_cuda(cudaMemsetAsync(t.device_data.get(), 0, bytes, stream), "cudaMemsetAsync");
        }
        return t;
    }

    // Token slots (Ops::pick_tokens_async): the picks on the device, the pinned host memory the
    // pick kernels mirror them into, and an event after each pick, by first slot.
    std::shared_ptr<void> token_slots;
    std::int32_t* token_slots_host = nullptr;
    std::int32_t* token_slots_mapped = nullptr;  // the same memory, as the device addresses it
    std::map<std::int32_t, cudaEvent_t> token_copies;

    void token_slots_ready() {
        if (token_slots) {
            return;
        }
        token_slots = alloc(Ops::kTokenSlots * sizeof(std::int32_t));
        void* host = nullptr;
        check_cuda(
            cudaHostAlloc(&host, Ops::kTokenSlots * sizeof(std::int32_t), cudaHostAllocMapped),
            "cudaHostAlloc (token slots)");
        token_slots_host = static_cast<std::int32_t*>(host);
        void* mapped = nullptr;
        check_cuda(cudaHostGetDevicePointer(&mapped, host, 0), "cudaHostGetDevicePointer");
        token_slots_mapped = static_cast<std::int32_t*>(mapped);
    }

    // Arrival counters of kernels whose last block to finish a piece of work completes it (the
    // split argmax, the split FP8 GEMV, the MoE routing's layout): zeroed when they grow, and
    // kept zero between launches by the kernels themselves.
    struct ArrivalCounters {
        std::shared_ptr<void> buffer;
        std::size_t words = 0;
    };
    ArrivalCounters argmax_done, gemv_counters, moe_counters, moe_expert_counts;
    std::vector<std::shared_ptr<void>> retired;
    std::int32_t* arrival_counters(ArrivalCounters& c, std::size_t words, std::size_t at_least) {
        if (words > c.words) {
            if (!graphs.empty()) {
                retired.push_back(std::move(c.buffer));  // recordings still count there
            }
            c.words = std::max(words, at_least);
            c.buffer = alloc(c.words * 4);
            check_cuda(cudaMemsetAsync(c.buffer.get(), 0, c.words * 4, stream),
                       "cudaMemsetAsync (arrival counters)");
        }
        return static_cast<std::int32_t*>(c.buffer.get());
    }

    // The split argmax's scratch (sample.h): counters, and partial bests grown as a launch needs.
    std::shared_ptr<void> argmax_partials;
    std::size_t argmax_partials_size = 0;
    ArgmaxSplit argmax_split_for(std::size_t rows, std::int64_t vocab) {
        auto* done = reinterpret_cast<unsigned*>(arrival_counters(argmax_done, rows, 256));
        const std::size_t bytes =
            argmax_partials_bytes(narrow(static_cast<std::int64_t>(rows)), narrow(vocab));
        if (bytes > argmax_partials_size) {
            argmax_partials_size = bytes;
            argmax_partials = alloc(bytes);
        }
        return {done, argmax_partials.get()};
    }

    // Host arrays reach the device through a pinned ring: a copy from pageable memory would
    // first wait for all queued work, and the host could never run ahead of the GPU. A lap of
    // the ring waits once for the copies of the lap before it.
    static constexpr std::size_t kRingBytes = 32u << 20;
    std::byte* ring = nullptr;
    const std::byte* ring_mapped = nullptr;  // the ring as the device addresses it
    std::size_t ring_used = 0;
    cudaEvent_t ring_lap = nullptr;

    // Ops between begin_independent and end_independent (model::Ops): the kernels that take a
    // role run at once. A copy among them is waited for by the kernel after it, which then
    // starts the group over.
    bool independent = false;
    int independent_kernels = 0;
    PdlRole role() {
        if (!independent) {
            return PdlRole::chained;
        }
        return independent_kernels++ == 0 ? PdlRole::group_first : PdlRole::group_member;
    }

    void copy_to_device(void* dst, const void* src, std::size_t bytes) {
        independent_kernels = 0;
        const std::size_t need = (bytes + 255) / 256 * 256;
        if (need > kRingBytes / 4) {
            check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream),
                       "cudaMemcpyAsync (upload)");
            return;
        }
        if (ring_used + need > kRingBytes) {
            check_cuda(cudaEventRecord(ring_lap, stream), "cudaEventRecord");
            check_cuda(cudaEventSynchronize(ring_lap), "cudaEventSynchronize (upload ring)");
            ring_used = 0;
        }
        std::byte* staged = ring + ring_used;
        ring_used += need;
        std::memcpy(staged, src, bytes);
        // A kernel reads the staged bytes through the mapping: a copy between two kernels
        // would end their programmatic overlap, and a step's first kernels follow this upload.
        launch_copy_from_host(ring_mapped + (staged - ring), dst, bytes, stream);
    }

    // The device copy of these bytes, if one is held (it becomes the most recently used).
    const void* uploaded(std::span<const std::byte> bytes) {
        for (auto& u : uploads) {
            if (u.device && u.host.size() == bytes.size() &&
                std::memcmp(u.host.data(), bytes.data(), bytes.size()) == 0) {
                u.used = ++upload_clock;
                return u.device.get();
            }
        }
        return nullptr;
    }
    // Holds `copy` as the copy of these bytes, in place of the least recently used entry.
    void hold_upload(std::span<const std::byte> bytes, std::shared_ptr<void> copy) {
        Upload& u =
            *std::min_element(uploads.begin(), uploads.end(),
                              [](const Upload& a, const Upload& b) { return a.used < b.used; });
        if (u.device) {
            replaced_uploads.push_back(std::move(u.device));
        }
        u.used = ++upload_clock;
        u.host.assign(bytes.begin(), bytes.end());
        u.device = std::move(copy);
    }

    template <typename T>
    const T* upload(std::span<const T> values) {
        if (values.empty()) {
            return nullptr;
        }
        if (graph.mode != GraphStep::eager) {
            if constexpr (std::is_same_v<T, std::int32_t>) {
                const auto n = static_cast<std::size_t>(graph.tokens);
                if (values.size() == n) {
                    for (auto [host, staged] : {std::pair{graph.ids_host, graph.ids},
                                                {graph.positions_host, graph.positions},
                                                {graph.slots_host, graph.slots}}) {
                        if (values.data() == host) {
                            return staged;
                        }
                    }
                }
            }
            // Data sent by an op itself would be frozen into a recording: this key stays eager.
            DS_ASSERT(!capture->on, "an op sent ", values.size_bytes(),
                      " bytes of its own while a step was being recorded");
            if (graph.refused_by == nullptr) {
                graph.refused_by = current_op;
            }
        }
        const std::span<const std::byte> bytes = std::as_bytes(values);
        if (const void* held = uploaded(bytes)) {
            return static_cast<const T*>(held);
        }
        std::shared_ptr<void> copy = alloc(bytes.size());
        copy_to_device(copy.get(), bytes.data(), bytes.size());
        const T* p = static_cast<const T*>(copy.get());
        hold_upload(bytes, std::move(copy));
        return p;
    }

    // Several arrays in one copy, each then found by upload() as if sent alone: a forward pass's
    // arrays sent before its first kernel, so that no copy sits between two kernels (a copy in
    // the stream ends programmatic overlap: the kernel after it cannot start early).
    void upload_together(std::span<const std::span<const std::int32_t>> arrays) {
        std::vector<std::byte> host;
        std::vector<std::pair<std::span<const std::byte>, std::size_t>> fresh;  // bytes, offset
        for (const auto& a : arrays) {
            const std::span<const std::byte> bytes = std::as_bytes(a);
            if (bytes.empty() || uploaded(bytes) != nullptr) {
                continue;
            }
            fresh.emplace_back(bytes, host.size());
            host.insert(host.end(), bytes.begin(), bytes.end());
            host.resize((host.size() + 15) / 16 * 16);  // each array 16-byte aligned
        }
        if (fresh.empty()) {
            return;
        }
        std::shared_ptr<void> copy = alloc(host.size());
        copy_to_device(copy.get(), host.data(), host.size());
        for (const auto& [bytes, offset] : fresh) {
            hold_upload(bytes,
                        std::shared_ptr<void>(copy, static_cast<std::byte*>(copy.get()) + offset));
        }
    }

    // y[m, n] = x[m, k] w[n, k]^T, row-major, with leading dimensions in floats.
    void gemm_xwt(const float* x, std::int64_t m, std::int64_t k, const float* w, std::int64_t n,
                  float* y) {
        if (m == 0 || n == 0) {
            return;
        }
        const float one = 1.0f, zero = 0.0f;
        // Row-major y^T = w x^T is column-major y = (w^T)^T x^T.
        check_cublas(cublasSgemm(blas, CUBLAS_OP_T, CUBLAS_OP_N, narrow(n), narrow(m), narrow(k),
                                 &one, w, narrow(k), x, narrow(k), &zero, y, narrow(n)),
                     str_cat("sgemm [", m, ", ", k, "] x [", n, ", ", k, "]^T"));
    }

    // Activations quantized to block FP8 for one or more segments of rows (see kernels.h).
    struct QuantizedRows {
        std::shared_ptr<void> q;
        std::shared_ptr<void> scale;
        std::int64_t k = 0;
        const std::uint8_t* rows(std::int64_t r0) const {
            return static_cast<const std::uint8_t*>(q.get()) + r0 * k;
        }
        const float* scales(std::int64_t r0) const {
            return static_cast<const float*>(scale.get()) + r0 * groups_of(k);
        }
    };
    // Quantizes rows [0, m) of x; starts (segment boundaries, the last one the padded row
    // count) say where each segment's scales go. Padding rows are zero.
    QuantizedRows quantize(const float* x, std::int64_t m, std::int64_t k,
                           std::span<const std::int32_t> starts) {
        const std::int64_t rows = starts.back();
        QuantizedRows out;
        out.k = k;
        out.q = transient(static_cast<std::size_t>(rows * k));
        out.scale = transient(static_cast<std::size_t>(rows * groups_of(k)) * sizeof(float));
        if (rows > m) {
            check_cuda(cudaMemsetAsync(out.q.get(), 0, static_cast<std::size_t>(rows * k), stream),
                       "cudaMemsetAsync");
            check_cuda(cudaMemsetAsync(
                           out.scale.get(), 0,
                           static_cast<std::size_t>(rows * groups_of(k)) * sizeof(float), stream),
                       "cudaMemsetAsync");
        }
        // One segment, {0, rows}, depends on the shape only; expert segments on the routing.
        const bool one_segment = starts.size() == 2 && starts[0] == 0;
        launch_quantize_activations(x, m, narrow(k),
                                    one_segment ? constant(starts) : upload(starts),
                                    static_cast<int>(starts.size()) - 1, out.q.get(),
                                    static_cast<float*>(out.scale.get()), stream);
        return out;
    }

    // y[m, n] = x[m, k] w[n, k]^T with both operands in block FP8: cuBLASLt's column-major
    // D[n, m] = op(A) B with A = w (stored [n, k] row-major, i.e. k x n column-major, transposed)
    // and B = x (k x m column-major); the weight's scales are per 128x128 block, the
    // activations' per 128 values of a row. cuBLASLt takes this only for m a multiple of 4; the
    // scale layouts (kernels.h) were found by checking every candidate against a host emulation.
    // Block-FP8 weights are stored with their rows padded to a multiple of 128 (zeros), and y
    // has that many columns.
    void fp8_gemm(const std::uint8_t* xq, const float* xs, std::int64_t m, std::int64_t k,
                  const Tensor& w, float* y) {
        const std::int64_t n = round_up128(w.rows());
        DS_ASSERT(m % 4 == 0, "FP8 matmul rows ", m, " not a multiple of 4");
        if (m == 0) {
            return;
        }
        auto key = std::make_tuple(m, n, k);
        auto it = fp8_plans.find(key);
        if (it == fp8_plans.end()) {
            Fp8Plan p;
            const std::string what =
                str_cat("FP8 matmul [", m, ", ", k, "] x [", n, ", ", k, "]^T");
            check_cublas(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), what);
            const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
            check_cublas(
                cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta),
                what);
            check_cublas(
                cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb),
                what);
            const std::int32_t a_mode = CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F;
            const std::int32_t b_mode = CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
            check_cublas(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE,
                                                        &a_mode, sizeof a_mode),
                         what);
            check_cublas(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE,
                                                        &b_mode, sizeof b_mode),
                         what);
            check_cublas(
                cublasLtMatrixLayoutCreate(&p.a, CUDA_R_8F_E4M3, static_cast<std::uint64_t>(k),
                                           static_cast<std::uint64_t>(n), k),
                what);
            check_cublas(
                cublasLtMatrixLayoutCreate(&p.b, CUDA_R_8F_E4M3, static_cast<std::uint64_t>(k),
                                           static_cast<std::uint64_t>(m), k),
                what);
            check_cublas(cublasLtMatrixLayoutCreate(&p.d, CUDA_R_32F, static_cast<std::uint64_t>(n),
                                                    static_cast<std::uint64_t>(m), n),
                         what);
            // The heuristic must see the scale pointers set: with them unset it may choose an
            // algorithm the scaled call then refuses (CUBLAS_STATUS_INVALID_VALUE).
            const void* w_scales = w.scale_data.get();
            check_cublas(
                cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                               &w_scales, sizeof w_scales),
                what);
            check_cublas(cublasLtMatmulDescSetAttribute(
                             p.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &xs, sizeof xs),
                         what);
            cublasLtMatmulPreference_t pref = nullptr;
            check_cublas(cublasLtMatmulPreferenceCreate(&pref), what);
            const std::uint64_t ws = kWorkspaceBytes;
            check_cublas(cublasLtMatmulPreferenceSetAttribute(
                             pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws),
                         what);
            cublasLtMatmulHeuristicResult_t result{};
            int found = 0;
            check_cublas(cublasLtMatmulAlgoGetHeuristic(lt, p.desc, p.a, p.b, p.d, p.d, pref, 1,
                                                        &result, &found),
                         what);
            cublasLtMatmulPreferenceDestroy(pref);
            DS_CHECK(found > 0, what, ": cuBLASLt has no algorithm for this shape");
            p.algo = result.algo;
            it = fp8_plans.emplace(key, p).first;
        }
        Fp8Plan& p = it->second;
        const void* ws = w.scale_data.get();
        check_cublas(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                                    &ws, sizeof ws),
                     "FP8 matmul scales");
        check_cublas(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                                    &xs, sizeof xs),
                     "FP8 matmul scales");
        const float one = 1.0f, zero = 0.0f;
        check_cublas(cublasLtMatmul(lt, p.desc, &one, w.device_data.get(), p.a, xq, p.b, &zero, y,
                                    p.d, y, p.d, &p.algo, workspace.get(), kWorkspaceBytes, stream),
                     str_cat("FP8 matmul [", m, ", ", k, "] x [", n, ", ", k, "]^T"));
    }

    // y[m, n] = the FP8 product of quantized rows and w, into y's n = w.rows() columns.
    void fp8_product(const QuantizedRows& xq, std::int64_t r0, std::int64_t m, const Tensor& w,
                     float* y) {
        const std::int64_t n = w.rows(), padded_n = round_up128(n), padded_m = round_up4(m);
        if (padded_m == m && padded_n == n) {
            fp8_gemm(xq.rows(r0), xq.scales(r0), m, xq.k, w, y);
            return;
        }
        // Padding rows and columns land in scratch; y is its top-left corner.
        std::shared_ptr<void> out =
            transient(static_cast<std::size_t>(padded_m * padded_n) * sizeof(float));
        fp8_gemm(xq.rows(r0), xq.scales(r0), padded_m, xq.k, w, static_cast<float*>(out.get()));
        check_cuda(cudaMemcpy2DAsync(y, static_cast<std::size_t>(n) * sizeof(float), out.get(),
                                     static_cast<std::size_t>(padded_n) * sizeof(float),
                                     static_cast<std::size_t>(n) * sizeof(float),
                                     static_cast<std::size_t>(m), cudaMemcpyDeviceToDevice, stream),
                   "cudaMemcpy2DAsync (FP8 matmul rows)");
    }

    // y = x w^T for a weight in any storage.
    void linear(const float* x, std::int64_t m, std::int64_t k, const Tensor& w, float* y) {
        if (m == 0 || w.rows() == 0) {
            return;
        }
        const WeightFormat format = format_of(w);
        if (m <= gemv_rows(format) && gemv_supports(format, narrow(k))) {
            const GemvSegment seg = segment_of(w, y, w.rows());
            gemv(format, GemvInput{x, narrow(k), narrow(k), false}, m, &seg, 1, narrow(m), nullptr);
            return;
        }
        switch (w.storage) {
            case model::Storage::fp8_block: {
                const std::array<std::int32_t, 2> one_segment = {
                    0, static_cast<std::int32_t>(round_up4(m))};
                const QuantizedRows xq = quantize(x, m, k, one_segment);
                fp8_product(xq, 0, m, w, y);
                break;
            }
            case model::Storage::bf16: {
                std::shared_ptr<void> xb = transient(static_cast<std::size_t>(m * k) * 2);
                launch_to_bf16(x, m * k, xb.get(), stream);
                const float one = 1.0f, zero = 0.0f;
                check_cublas(
                    cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, narrow(w.rows()), narrow(m),
                                 narrow(k), &one, w.device_data.get(), CUDA_R_16BF, narrow(k),
                                 xb.get(), CUDA_R_16BF, narrow(k), &zero, y, CUDA_R_32F,
                                 narrow(w.rows()), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                    str_cat("bf16 gemm [", m, ", ", k, "] x [", w.rows(), ", ", k, "]^T"));
                break;
            }
            case model::Storage::f32:
            case model::Storage::fp8_row:  // ptr() refuses it
                gemm_xwt(x, m, k, ptr(w), w.rows(), y);
                break;
        }
    }

    // Rows a norm also wrote in block FP8 (kernels.h, Fp8Rows), so that the FP8 product reading
    // them next needs no quantizer launch (a decode step has some 40 such products). They stand
    // for [x, x + rows k) only while nothing has written there since: through the op right after
    // the norm, and through later ones that wrote only elsewhere (keep_fp8_rows).
    struct Fp8Shadow {
        const float* x = nullptr;
        std::int64_t rows = 0, k = 0;
        std::uint64_t op = 0;          // the op after which they are known to hold
        std::shared_ptr<void> buffer;  // [rows][k] e4m3, then [rows][k / 128] scales
    } fp8_shadow;

    // Room for a norm's output rows in FP8, where an FP8 GEMV may read them; empty otherwise.
    Fp8Rows fp8_rows_for(std::int64_t rows, std::int64_t k) {
        fp8_shadow = {};
        if (fp32 || rows == 0 || rows > kFp8GemvRows || k % 128 != 0) {
            return {};
        }
        fp8_shadow.buffer = transient(static_cast<std::size_t>(rows * (k + 4 * (k / 128))));
        auto* bytes = static_cast<unsigned char*>(fp8_shadow.buffer.get());
        return {bytes, reinterpret_cast<float*>(bytes + rows * k)};
    }
    // After the norm's launch: whether it wrote them.
    void fp8_rows_written(bool written, const float* x, std::int64_t rows, std::int64_t k) {
        if (!written) {
            fp8_shadow = {};
            return;
        }
        fp8_shadow.x = x;
        fp8_shadow.rows = rows;
        fp8_shadow.k = k;
        fp8_shadow.op = ops_begun;
    }
    // (An op that kept them marks them as holding after itself, which also covers the ops
    // nested in it that come after.)
    bool fp8_rows_current() const {
        return fp8_shadow.x != nullptr && fp8_shadow.op + 1 >= ops_begun;
    }
    // The current op wrote only these ranges (pointer, floats): if none overlaps the rows, they
    // still hold after it.
    void keep_fp8_rows(std::span<const std::pair<const float*, std::int64_t>> written) {
        if (!fp8_rows_current()) {
            return;
        }
        const float* lo = fp8_shadow.x;
        const float* hi = lo + fp8_shadow.rows * fp8_shadow.k;
        for (const auto& [p, n] : written) {
            if (p < hi && lo < p + n) {
                return;
            }
        }
        fp8_shadow.op = ops_begun;
    }
    // The FP8 rows of this GEMV input, if a norm left them current.
    void* quantized_input(const GemvInput& in, std::int64_t input_rows) const {
        const bool same = fp8_rows_current() && in.x == fp8_shadow.x && !in.swiglu &&
                          in.k == fp8_shadow.k && in.ldx == in.k && input_rows == fp8_shadow.rows;
        return same ? fp8_shadow.buffer.get() : nullptr;
    }

    // The FP8 GEMV's partial sums of split tiles (its counters are gemv_counters).
    std::shared_ptr<void> gemv_partials;
    int gemv_partial_warps = 0;

    // y = x W^T for the GEMV forms (gemv.h): block-FP8 weights on tensor cores, the rest in the
    // float32 GEMV.
    // Grouped form: output_rows = the rows over all slots.
    void gemv(WeightFormat format, const GemvInput& in, std::int64_t input_rows,
              const GemvSegment* segs, int num_segments, int m, const GemvGrouped* grouped,
              std::int64_t output_rows = 0, const GemvRope& rope = {}) {
        DS_ASSERT(rope.positions == nullptr || format == WeightFormat::fp8_block,
                  "RoPE in a product of format ", static_cast<int>(format));
        if (format != WeightFormat::fp8_block) {
            if (grouped != nullptr) {
                launch_gemv_grouped(format, in, segs, num_segments, *grouped, stream);
            } else {
                launch_gemv(format, in, segs, num_segments, GemvPlain{m}, stream);
            }
            return;
        }
        if (gemv_partials == nullptr) {
            int sms = 0;
            check_cuda(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device),
                       "cudaDeviceGetAttribute");
            gemv_partial_warps = sms * 24;  // six blocks of four warps an SM
            gemv_partials = alloc(static_cast<std::size_t>(gemv_partial_warps) * 512);
        }
        const int tiles = gemv_fp8_tiles(segs, num_segments);
        // A slot of r rows takes ceil(r / 8) <= (r + 7) / 8 row groups; over at most max_slots
        // slots of output_rows rows in all, at most (output_rows + 7 max_slots) / 8.
        const std::int64_t row_groups =
            grouped != nullptr ? (output_rows + 7 * std::int64_t{grouped->max_slots}) / 8
                               : (m + 7) / 8;
        const std::size_t words = gemv_fp8_counter_words(tiles, narrow(row_groups));
        std::int32_t* counters = arrival_counters(gemv_counters, words, std::size_t{1} << 16);
        GemvFp8Workspace ws;
        std::shared_ptr<void> x8;
        if (void* quantized = quantized_input(in, input_rows)) {
            ws.x8 = quantized;
            ws.quantized = true;
        } else {
            x8 = transient(static_cast<std::size_t>(input_rows * (in.k + 4 * (in.k / 128))));
            ws.x8 = x8.get();
        }
        ws.xs = reinterpret_cast<float*>(static_cast<unsigned char*>(ws.x8) + input_rows * in.k);
        ws.partials = static_cast<float*>(gemv_partials.get());
        ws.partial_warps = gemv_partial_warps;
        ws.counters = counters;
        ws.counter_words = gemv_counters.words;
        launch_gemv_fp8(in, input_rows, segs, num_segments, m, grouped, narrow(row_groups), ws,
                        stream, rope);
    }

    // Every expert's weights as device arrays of pointers, for the grouped GEMV and the tiled
    // GEMM: [e][gate, up] and [e][down], with their scales. Built once per layer, and again
    // whenever the list's weights are not those it was built from (a list at a freed one's
    // address); a step only compares pointers.
    struct ExpertTable {
        std::vector<const void*> gu, gus, d, ds;  // the host copies, which also identify it
        std::shared_ptr<void> gate_up, gate_up_scales, down, down_scales;
    };
    std::map<std::pair<const void*, const void*>, ExpertTable> expert_tables;

    // The routed experts' weights, then the shared expert's (when given) as one more.
    const ExpertTable& expert_table(std::span<const model::ExpertWeights> experts,
                                    const model::ExpertWeights* shared) {
        const std::size_t count = experts.size() + (shared != nullptr ? 1 : 0);
        auto expert = [&](std::size_t i) -> const model::ExpertWeights& {
            return i < experts.size() ? experts[i] : *shared;
        };
        auto& table = expert_tables[{experts.data(), shared}];
        bool same = table.gate_up != nullptr && table.d.size() == count;
        for (std::size_t i = 0; same && i < count; ++i) {
            const model::ExpertWeights& e = expert(i);
            same = table.gu[2 * i] == e.gate->device_data.get() &&
                   table.gu[2 * i + 1] == e.up->device_data.get() &&
                   table.gus[2 * i] == e.gate->scale_data.get() &&
                   table.gus[2 * i + 1] == e.up->scale_data.get() &&
                   table.d[i] == e.down->device_data.get() &&
                   table.ds[i] == e.down->scale_data.get();
        }
        if (same) {
            return table;
        }
        ExpertTable built;
        for (std::size_t i = 0; i < count; ++i) {
            const model::ExpertWeights& e = expert(i);
            built.gu.push_back(e.gate->device_data.get());
            built.gu.push_back(e.up->device_data.get());
            built.gus.push_back(e.gate->scale_data.get());
            built.gus.push_back(e.up->scale_data.get());
            built.d.push_back(e.down->device_data.get());
            built.ds.push_back(e.down->scale_data.get());
        }
        auto put = [&](const std::vector<const void*>& v) {
            std::shared_ptr<void> dev = alloc(v.size() * sizeof(void*));
            copy_to_device(dev.get(), v.data(), v.size() * sizeof(void*));
            return dev;
        };
        built.gate_up = put(built.gu);
        built.gate_up_scales = put(built.gus);
        built.down = put(built.d);
        built.down_scales = put(built.ds);
        table = std::move(built);
        return table;
    }

    // A MoE layer on the grouped GEMV: routing and its layout in one launch, gate and up in one
    // product, down in another, combine. `shared` joins as one more expert.
    void moe_grouped(const Tensor& x, const Tensor& router_logits, std::span<const float> bias,
                     const model::ModelConfig& c, WeightFormat format,
                     std::span<const model::ExpertWeights> experts,
                     const model::ExpertWeights* shared, Tensor& out) {
        const std::int64_t t = x.rows(), hidden = x.cols(), inter = experts[0].gate->rows();
        const int width = c.num_experts_per_tok + (shared != nullptr ? 1 : 0);
        const int num_experts = c.n_routed_experts + (shared != nullptr ? 1 : 0);
        const std::int64_t n = t * width;
        const int slots = static_cast<int>(std::min<std::int64_t>(n, num_experts));
        // One allocation for the routing and layout arrays (all 4-byte values).
        const auto words = static_cast<std::size_t>(5 * n + 2 * slots + 2);
        std::shared_ptr<void> scratch = transient(words * 4);
        auto* base = static_cast<std::int32_t*>(scratch.get());
        std::int32_t* chosen = base;                                    // [n]
        auto* weight = reinterpret_cast<float*>(base + n);              // [n]
        std::int32_t* row_token = base + 2 * n;                         // [n]
        std::int32_t* combine_pos = base + 3 * n;                       // [n]
        auto* combine_weight = reinterpret_cast<float*>(base + 4 * n);  // [n]
        std::int32_t* count = base + 5 * n;                             // [1]
        std::int32_t* slot_expert = count + 1;                          // [slots]
        std::int32_t* slot_start = slot_expert + slots;                 // [slots + 1]
        const MoeLayout layout{count,     slot_expert, slot_start,
                               row_token, combine_pos, combine_weight};
        launch_moe_route(ptr(router_logits), constant(bias), narrow(t), c.n_routed_experts,
                         c.n_group, c.topk_group, c.num_experts_per_tok, c.norm_topk_prob,
                         static_cast<float>(c.routed_scaling_factor), shared != nullptr, chosen,
                         weight, stream, &layout, arrival_counters(moe_counters, 1, 1));

        const ExpertTable& table = expert_table(experts, shared);
        Tensor gate_up = tensor({n, 2 * inter}, false), ye = tensor({n, hidden}, false);
        GemvGrouped grouped;
        grouped.count = count;
        grouped.expert = slot_expert;
        grouped.start = slot_start;
        grouped.x_row = row_token;
        grouped.table = static_cast<const void* const*>(table.gate_up.get());
        grouped.scales = static_cast<const float* const*>(table.gate_up_scales.get());
        grouped.max_slots = slots;
        // Rows an expert gets, with headroom: the kernel's row tile (more rows loop).
        grouped.rows_per_slot =
            static_cast<int>(std::min<std::int64_t>(8, (n + slots - 1) / slots));
        GemvSegment gu[2];
        for (int i = 0; i < 2; ++i) {
            gu[i].n = narrow(inter);
            gu[i].y = ptr(gate_up) + i * inter;
            gu[i].ldy = narrow(2 * inter);
            gu[i].scale_ld = static_cast<int>(weight_scale_stride(hidden));
        }
        gemv(format, GemvInput{ptr(x), narrow(hidden), narrow(hidden), false}, t, gu, 2, 0,
             &grouped, n);
        grouped.x_row = nullptr;  // the down projection reads its own permuted row
        grouped.table = static_cast<const void* const*>(table.down.get());
        grouped.scales = static_cast<const float* const*>(table.down_scales.get());
        GemvSegment down;
        down.n = narrow(hidden);
        down.y = ptr(ye);
        down.ldy = narrow(hidden);
        down.scale_ld = static_cast<int>(weight_scale_stride(inter));
        if (format == WeightFormat::fp8_block) {
            // The quantizer applies SiLU(gate) * up as it reads each row. It can only start once
            // the gate/up product has waited for the routing, so the down product may stream its
            // experts' weights while the two before it finish.
            grouped.tables_settled = true;
            gemv(format, GemvInput{ptr(gate_up), narrow(2 * inter), narrow(inter), true}, n, &down,
                 1, 0, &grouped, n);
        } else {
            // SiLU(gate) * up once per row, not in every warp of the down projection that reads it.
            Tensor act = tensor({n, inter}, false);
            launch_silu_mul_rows(ptr(gate_up), narrow(inter), n, ptr(act), stream);
            gemv(format, GemvInput{ptr(act), narrow(inter), narrow(inter), false}, n, &down, 1, 0,
                 &grouped, n);
        }
        // Each token's routed experts in ascending order, the shared expert (the highest number)
        // last: the order the host path adds them in.
        launch_moe_combine(ptr(ye), combine_pos, combine_weight, narrow(t), width, narrow(hidden),
                           ptr(out), stream);
    }

    // CudaOps::set_moe_gemm_rows.
    std::int64_t moe_gemm_rows = kDefaultMoeGemmRows;
    std::int64_t mha_tokens = kDefaultMhaTokens;

    // A MoE layer on the tiled FP8 GEMM: route, lay out, quantize the permuted rows, gate and up
    // in one launch, SiLU * up quantized, down, combine. `shared` joins as one more expert.
    void moe_tiled(const Tensor& x, const Tensor& router_logits, std::span<const float> bias,
                   const model::ModelConfig& c, std::span<const model::ExpertWeights> experts,
                   const model::ExpertWeights* shared, Tensor& out) {
        const std::int64_t t = x.rows(), hidden = x.cols(), inter = experts[0].gate->rows();
        const int width = c.num_experts_per_tok + (shared != nullptr ? 1 : 0);
        const int num_experts = c.n_routed_experts + (shared != nullptr ? 1 : 0);
        const std::int64_t n = t * width, max_tiles = moe_tiles_bound(n, num_experts),
                           max_rows = max_tiles * kMoeTileRows;
        const auto words = static_cast<std::size_t>(4 * n + 1 + num_experts + max_tiles + max_rows);
        std::shared_ptr<void> scratch = transient(words * 4);
        auto* base = static_cast<std::int32_t*>(scratch.get());
        std::int32_t* chosen = base;                        // [n]
        auto* weight = reinterpret_cast<float*>(base + n);  // [n]
        MoeTileLayout layout;
        layout.counts = arrival_counters(moe_expert_counts, static_cast<std::size_t>(num_experts),
                                         kMaxLayoutExperts);
        layout.combine_pos = base + 2 * n;                               // [n]
        layout.combine_weight = reinterpret_cast<float*>(base + 3 * n);  // [n]
        layout.tiles = base + 4 * n;                                     // [1]
        layout.start = layout.tiles + 1;                                 // [num_experts]
        layout.tile_expert = layout.start + num_experts;                 // [max_tiles]
        layout.row_token = layout.tile_expert + max_tiles;               // [max_rows]
        launch_moe_route(ptr(router_logits), constant(bias), narrow(t), c.n_routed_experts,
                         c.n_group, c.topk_group, c.num_experts_per_tok, c.norm_topk_prob,
                         static_cast<float>(c.routed_scaling_factor), shared != nullptr, chosen,
                         weight, stream);
        launch_moe_tile_layout(chosen, weight, narrow(t), width, num_experts, layout, stream);

        const ExpertTable& table = expert_table(experts, shared);
        // Rows quantized to block FP8 (the tokens' rows gathered, or SiLU(gate) * up of each
        // permuted row), then times every active expert's weights: segments of cols columns.
        const std::int64_t widest = std::max(hidden, inter);
        std::shared_ptr<void> q = transient(static_cast<std::size_t>(max_rows * widest)),
                              qs = transient(static_cast<std::size_t>(max_rows * (widest / 128)) *
                                             4);
        auto products = [&](const float* in, std::int64_t ldx, std::int64_t k, bool swiglu,
                            const std::shared_ptr<void>& weights,
                            const std::shared_ptr<void>& scales, int segments, std::int64_t cols,
                            float* result) {
            auto* x8 = static_cast<unsigned char*>(q.get());
            auto* xs = static_cast<float*>(qs.get());
            launch_moe_quantize_rows(in, narrow(ldx), narrow(k),
                                     swiglu ? nullptr : layout.row_token, swiglu, layout.tiles,
                                     max_tiles, x8, xs, stream);
            MoeGemmWeights w;
            w.table = static_cast<const void* const*>(weights.get());
            w.scales = static_cast<const float* const*>(scales.get());
            w.segments = segments;
            w.n = narrow(cols);
            w.scale_ld = static_cast<int>(weight_scale_stride(k));
            launch_moe_gemm_fp8(x8, xs, narrow(k), layout.tiles, layout.tile_expert, max_tiles, w,
                                result, narrow(segments * cols), stream);
        };
        Tensor gate_up = tensor({max_rows, 2 * inter}, false),
               ye = tensor({max_rows, hidden}, false);
        products(ptr(x), hidden, hidden, false, table.gate_up, table.gate_up_scales, 2, inter,
                 ptr(gate_up));
        products(ptr(gate_up), 2 * inter, inter, true, table.down, table.down_scales, 1, hidden,
                 ptr(ye));
        launch_moe_combine(ptr(ye), layout.combine_pos, layout.combine_weight, narrow(t), width,
                           narrow(hidden), ptr(out), stream);
    }

    // Causal MLA for a prefill step without absorption (mha_prefill.h): every visible latent row
    // gathered, expanded by kv_b into [k_nope | v] for every head in one BF16 product, and plain
    // multi-head attention over them.
    void mha_prefill(const Tensor& q, std::span<const model::SequenceSlots> seqs,
                     const model::LayerCacheView& cache, const Tensor& kv_b,
                     const model::MlaParams& p, Tensor& out) {
        const int heads = p.num_heads, lora = p.kv_lora_rank, rope = p.qk_rope_head_dim;
        const std::int64_t width = kv_b.rows();  // heads * (nope + v)
        const Keys keys = causal_keys(seqs);
        const auto n = static_cast<std::int64_t>(keys.slots.size());
        std::vector<std::int32_t> tiles;  // MhaTile fields, four a tile
        std::int32_t q_row = 0, key_row = 0;
        for (const auto& sq : seqs) {
            for (std::int32_t i = 0; i < sq.num_new; i += kMhaTileRows) {
                tiles.insert(tiles.end(), {q_row + i, std::min(kMhaTileRows, sq.num_new - i),
                                           sq.num_cached + i, key_row});
            }
            q_row += sq.num_new;
            key_row += sq.num_cached + sq.num_new;
        }
        const std::int32_t* rows = upload(std::span<const std::int32_t>(keys.slots));
        const std::int32_t* d_tiles = upload(std::span<const std::int32_t>(tiles));
        auto latent = transient(static_cast<std::size_t>(n * lora) * 2);
        auto k_rope = transient(static_cast<std::size_t>(n * rope) * 2);
        launch_gather_rows_bytes(cache.latent->device_data.get(), lora * 2, rows, n, latent.get(),
                                 stream);
        launch_gather_rows_bytes(cache.rope->device_data.get(), rope * 2, rows, n, k_rope.get(),
                                 stream);
        // kv_b in bfloat16 for the expansion.
        std::shared_ptr<void> w16;
        const void* w = kv_b.device_data.get();
        if (kv_b.storage != model::Storage::bf16) {
            std::shared_ptr<void> w32;
            const float* f = nullptr;
            if (kv_b.storage == model::Storage::f32) {
                f = ptr(kv_b);
            } else {
                w32 = transient(static_cast<std::size_t>(kv_b.numel()) * sizeof(float));
                launch_dequantize_weight(
                    kv_b.device_data.get(), static_cast<const float*>(kv_b.scale_data.get()),
                    kv_b.rows(), kv_b.cols(), static_cast<float*>(w32.get()), stream);
                f = static_cast<const float*>(w32.get());
            }
            w16 = transient(static_cast<std::size_t>(kv_b.numel()) * 2);
            launch_to_bf16(f, kv_b.numel(), w16.get(), stream);
            w = w16.get();
        }
        auto kv = transient(static_cast<std::size_t>(n * width) * 2);
        const float one = 1.0f, zero = 0.0f;
        // Bfloat16 operands: tensor cores, which the pedantic float32 mode would forbid.
        check_cublas(cublasSetMathMode(blas, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
        const cublasStatus_t status =
            cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, narrow(width), narrow(n), lora, &one, w,
                         CUDA_R_16BF, lora, latent.get(), CUDA_R_16BF, lora, &zero, kv.get(),
                         CUDA_R_16BF, narrow(width), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        check_cublas(cublasSetMathMode(blas, CUBLAS_PEDANTIC_MATH), "cublasSetMathMode");
        check_cublas(status, str_cat("MLA key expansion [", n, ", ", lora, "] x [", width, ", ",
                                     lora, "]^T"));
        launch_mha_prefill(
            ptr(q), kv.get(), k_rope.get(), reinterpret_cast<const MhaTile*>(d_tiles),
            static_cast<int>(tiles.size() / 4), heads, p.softmax_scale, ptr(out), stream);
    }

    // A graph step's inputs into the arena's first block (GraphState), which the emptied arena
    // places at its start: where the recording reads them.
    void stage_graph_inputs(std::span<const std::int32_t> ids,
                            std::span<const model::SequenceSlots> seqs) {
        const int n = graph.tokens;
        DS_ASSERT(static_cast<int>(ids.size()) == n && static_cast<int>(seqs.size()) == n,
                  "a graph step of ", n, " tokens got ", ids.size(), " ids and ", seqs.size(),
                  " sequences");
        std::vector<std::int32_t> positions, slots;
        for (const model::SequenceSlots& s : seqs) {
            const bool fits = s.num_new == 1 && s.num_cached + 1 <= graph.max_keys &&
                              s.slots.size() > static_cast<std::size_t>(s.num_cached);
            DS_ASSERT(fits, "a sequence of a graph step brings ", s.num_new, " tokens after ",
                      s.num_cached, " (bound ", graph.max_keys, ")");
            positions.push_back(s.num_cached);
            slots.push_back(s.slots[static_cast<std::size_t>(s.num_cached)]);
        }
        // The key lists causal attention reads, as begin_forward sends them to eager steps.
        const Keys keys = causal_keys(seqs);
        auto& h = graph.host;
        h.assign(ids.begin(), ids.end());
        for (const auto* part : {&std::as_const(positions), &std::as_const(slots), &keys.offset,
                                 &keys.count, &keys.slots}) {
            h.insert(h.end(), part->begin(), part->end());
        }
        arena->reset();
        const auto capacity =
            static_cast<std::size_t>(5 * n) + static_cast<std::size_t>(n) * graph.max_keys;
        graph.inputs = transient(capacity * sizeof(std::int32_t));
        auto* base = static_cast<std::int32_t*>(graph.inputs.get());
        graph.ids = base;
        graph.positions = base + n;
        graph.slots = base + 2 * n;
        graph.key_offset = base + 3 * n;
        graph.key_count = base + 4 * n;
        graph.keys = base + 5 * n;
        copy_to_device(base, h.data(), h.size() * sizeof(std::int32_t));
    }

    void launch_graph(cudaGraphExec_t exec) {
        auto timed = op("graph_replay");
        check_cuda(cudaGraphLaunch(exec, stream), "cudaGraphLaunch");
    }

    // After a run that needed more than the arena holds: a larger arena, and no recordings (they
    // address the old one, which lives on while the run's tensors do).
    void grow_arena() {
        check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize (graph memory)");
        drop_graphs();
        auto next = std::make_shared<Arena>();
        constexpr std::size_t kGrain = 2u << 20;
        next->capacity = (arena->peak + kGrain - 1) / kGrain * kGrain;
        next->buffer = alloc(next->capacity);
        next->reset();
        arena = std::move(next);
        log::info("CUDA graph memory: ", arena->capacity >> 20, " MiB (grown for decode batch ",
                  graph.tokens, ", up to ", graph.max_keys, " keys)");
    }

    void leave_graph_step() {
        graph.mode = GraphStep::eager;
        graph.inputs.reset();
        graph.ids_host = graph.positions_host = graph.slots_host = nullptr;
    }

    // Ends the stream capture; then frees what was freed during it.
    cudaError_t end_capture(cudaGraph_t* recorded) {
        const cudaError_t ended = cudaStreamEndCapture(stream, recorded);
        capture->on = false;
        for (void* p : std::exchange(capture->deferred_frees, {})) {
            cudaFreeAsync(p, stream);
        }
        return ended;
    }

    void drop_graphs() {
        for (auto& [key, exec] : graphs) {
            cudaGraphExecDestroy(exec);
        }
        graphs.clear();
    }

    // The key lists of every new token, as cache slots: for causal attention, the prefix of the
    // token's sequence (offset = where that sequence's slots start); for selected attention, the
    // chosen positions mapped to slots.
    struct Keys {
        std::vector<std::int32_t> slots, offset, count;
        int max_count = 0;
    };
    static Keys causal_keys(std::span<const model::SequenceSlots> seqs) {
        Keys k;
        for (const auto& s : seqs) {
            const auto base = static_cast<std::int32_t>(k.slots.size());
            const auto visible = static_cast<std::size_t>(s.num_cached + s.num_new);
            k.slots.insert(k.slots.end(), s.slots.begin(), s.slots.begin() + visible);
            for (std::int32_t j = 0; j < s.num_new; ++j) {
                k.offset.push_back(base);
                k.count.push_back(s.num_cached + j + 1);
                k.max_count = std::max(k.max_count, s.num_cached + j + 1);
            }
        }
        return k;
    }
};

CudaOps::CudaOps(int device, bool fp32) : impl_(std::make_unique<Impl>()) {
    impl_->fp32 = fp32;
    if (const char* every = std::getenv("DSSERVE_CUDA_PROFILE")) {
        impl_->profile_every = std::max(0, std::atoi(every));
    }
    const int n = cuda_device_count();
    DS_CHECK(n > 0, "--device cuda: no CUDA device is visible to this process");
    DS_CHECK(device >= 0 && device < n, "--device cuda:", device, ": only ", n,
             " CUDA device(s) are visible");
    impl_->device = device;
    impl_->bind();
    check_cuda(cudaStreamCreateWithFlags(&impl_->stream, cudaStreamNonBlocking),
               "cudaStreamCreate");
    // Keep freed memory in the pool: steps allocate and free the same sizes over and over.
    cudaMemPool_t pool = nullptr;
    check_cuda(cudaDeviceGetDefaultMemPool(&pool, device), "cudaDeviceGetDefaultMemPool");
    std::uint64_t keep = UINT64_MAX;
    check_cuda(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep),
               "cudaMemPoolSetAttribute");
    check_cublas(cublasCreate(&impl_->blas), "cublasCreate");
    check_cublas(cublasSetStream(impl_->blas, impl_->stream), "cublasSetStream");
    // Plain float32 products (no TF32), so that results match the CPU backend to rounding.
    check_cublas(cublasSetMathMode(impl_->blas, CUBLAS_PEDANTIC_MATH), "cublasSetMathMode");
    check_cublas(cublasLtCreate(&impl_->lt), "cublasLtCreate");
    impl_->workspace = impl_->alloc(Impl::kWorkspaceBytes);
    // cuBLAS's own workspace, set rather than left for it to allocate on first use, which a
    // recorded step could not do. The stream orders its use against cuBLASLt's.
    check_cublas(cublasSetWorkspace(impl_->blas, impl_->workspace.get(), Impl::kWorkspaceBytes),
                 "cublasSetWorkspace");
    void* ring = nullptr;
    check_cuda(cudaHostAlloc(&ring, Impl::kRingBytes, cudaHostAllocMapped),
               "cudaHostAlloc (upload ring)");
    impl_->ring = static_cast<std::byte*>(ring);
    void* ring_mapped = nullptr;
    check_cuda(cudaHostGetDevicePointer(&ring_mapped, ring, 0), "cudaHostGetDevicePointer");
    impl_->ring_mapped = static_cast<const std::byte*>(ring_mapped);
    check_cuda(cudaEventCreateWithFlags(&impl_->ring_lap, cudaEventDisableTiming),
               "cudaEventCreate");
}

CudaOps::~CudaOps() {
    // No checks here: at process exit the CUDA runtime may already be unloading, and there is
    // nothing left to report to.
    impl_->uploads = {};
    if (cudaSetDevice(impl_->device) == cudaSuccess) {
        cudaStreamSynchronize(impl_->stream);
        impl_->drop_graphs();
        cublasDestroy(impl_->blas);
        for (auto& [shape, p] : impl_->fp8_plans) {
            cublasLtMatrixLayoutDestroy(p.a);
            cublasLtMatrixLayoutDestroy(p.b);
            cublasLtMatrixLayoutDestroy(p.d);
            cublasLtMatmulDescDestroy(p.desc);
        }
        cublasLtDestroy(impl_->lt);
        cudaEventDestroy(impl_->ring_lap);
        cudaFreeHost(impl_->ring);
        for (auto& [first, e] : impl_->token_copies) {
            cudaEventDestroy(e);
        }
        cudaFreeHost(impl_->token_slots_host);
    }
    // The stream is left alive: tensors that outlive the backend free into it.
}

void CudaOps::set_mha_tokens(std::int64_t tokens) {
    impl_->mha_tokens = tokens;
}

void CudaOps::set_moe_gemm_rows(std::int64_t rows) {
    impl_->moe_gemm_rows = rows;
}

void CudaOps::synchronize() {
    impl_->bind();
    check_cuda(cudaStreamSynchronize(impl_->stream), "cudaStreamSynchronize");
    impl_->collect_profile();
}

Tensor CudaOps::zeros(std::vector<std::int64_t> shape) {
    impl_->bind();
    return impl_->tensor(std::move(shape), true);
}

Tensor CudaOps::empty(std::vector<std::int64_t> shape) {
    impl_->bind();
    return impl_->tensor(std::move(shape), false);
}

Tensor CudaOps::cache_zeros(std::int64_t rows, std::int64_t cols, model::Storage storage) {
    DS_CHECK(storage == model::Storage::f32 || storage == model::Storage::bf16 ||
                 storage == model::Storage::fp8_row,
             "a cache table is float32, bfloat16 or FP8 rows");
    impl_->bind();
    if (storage != model::Storage::fp8_row) {
        return impl_->tensor({rows, cols}, true, storage);
    }
    DS_CHECK(indexer_fp8_supports(narrow(cols)), "FP8 rows of ", cols, " values");
    Tensor t;
    t.shape = {rows, cols};
    t.device = model::Device::cuda;
    t.storage = storage;
    const auto bytes = static_cast<std::size_t>(rows * cols);
    const auto scale_bytes = static_cast<std::size_t>(rows) * sizeof(float);
    t.device_data = impl_->alloc(bytes);
    t.scale_data = impl_->alloc(scale_bytes);
    for (auto [p, n] : {std::pair{t.device_data.get(), bytes}, {t.scale_data.get(), scale_bytes}}) {
        if (n != 0) {
            check_cuda(cudaMemsetAsync(p, 0, n, impl_->stream), "cudaMemsetAsync");
        }
    }
    return t;
}

std::optional<Tensor> CudaOps::random_normal(std::vector<std::int64_t> shape,
                                             const model::NormalInit& init) {
    std::lock_guard lock(impl_->place_mutex);
    impl_->bind();
    Tensor t = impl_->tensor(std::move(shape), false);
    launch_random_normal(t.device_ptr(), t.numel(), init.state, init.mean, init.std, impl_->stream);
    // Whole before any product reads it (see to_device).
    check_cuda(cudaStreamSynchronize(impl_->stream), "cudaStreamSynchronize (random_normal)");
    return t;
}

void CudaOps::to_device(Tensor& t, model::Storage storage) {
    std::lock_guard lock(impl_->place_mutex);
    impl_->bind();
    if (impl_->fp32) {
        storage = model::Storage::f32;
    }
    // Block FP8 needs whole 128-column groups (the activations' scale groups); rows are padded.
    if (storage == model::Storage::fp8_block &&
        (t.shape.size() != 2 || t.cols() % 128 != 0 || t.rows() == 0)) {
        storage = model::Storage::f32;
    }
    if (t.device == model::Device::cuda) {
        if (t.storage == storage) {
            return;
        }
        DS_ASSERT(t.storage == model::Storage::f32, "converting a device tensor from ",
                  static_cast<int>(t.storage));
    } else {
        DS_ASSERT(static_cast<std::int64_t>(t.data.size()) == t.numel(), t.data.size());
        Tensor d = impl_->tensor(t.shape, false);
        if (!t.data.empty()) {
            check_cuda(cudaMemcpyAsync(d.device_ptr(), t.data.data(), t.data.size() * sizeof(float),
                                       cudaMemcpyHostToDevice, impl_->stream),
                       "cudaMemcpyAsync (to_device)");
        }
        t = std::move(d);
    }
    if (storage == model::Storage::fp8_block) {
        Tensor q;
        q.shape = t.shape;
        q.device = model::Device::cuda;
        q.storage = model::Storage::fp8_block;
        const std::int64_t rows = round_up128(t.rows());
        const auto bytes = static_cast<std::size_t>(rows * t.cols());
        q.device_data = impl_->alloc(bytes);
        check_cuda(cudaMemsetAsync(q.device_data.get(), 0, bytes, impl_->stream),
                   "cudaMemsetAsync");
        const auto scale_bytes =
            static_cast<std::size_t>(groups_of(rows) * weight_scale_stride(t.cols())) *
            sizeof(float);
        q.scale_data = impl_->alloc(scale_bytes);
        check_cuda(cudaMemsetAsync(q.scale_data.get(), 0, scale_bytes, impl_->stream),
                   "cudaMemsetAsync");
        launch_quantize_weight(t.device_ptr(), t.rows(), t.cols(), q.device_data.get(),
                               static_cast<float*>(q.scale_data.get()), impl_->stream);
        t = std::move(q);
    } else if (storage == model::Storage::bf16) {
        Tensor b;
        b.shape = t.shape;
        b.device = model::Device::cuda;
        b.storage = model::Storage::bf16;
        b.device_data = impl_->alloc(static_cast<std::size_t>(t.numel()) * 2);
        launch_to_bf16(t.device_ptr(), t.numel(), b.device_data.get(), impl_->stream);
        t = std::move(b);
    }
    // The FP8 GEMV starts reading its weights before it waits for the kernels ahead of it
    // (launch.cuh): a weight must be whole before any product is enqueued.
    check_cuda(cudaStreamSynchronize(impl_->stream), "cudaStreamSynchronize (to_device)");
}

model::Ops::MemoryInfo CudaOps::memory_info() {
    impl_->bind();
    std::size_t free = 0, total = 0;
    check_cuda(cudaMemGetInfo(&free, &total), "cudaMemGetInfo");
    return {free, total};
}

Tensor CudaOps::to_host(const Tensor& t) {
    if (t.on_host()) {
        return t;
    }
    DS_ASSERT(!impl_->capture->on, "to_host waits for the device: not inside a recorded step");
    impl_->bind();
    if (t.storage == model::Storage::fp8_block) {
        Tensor f = impl_->tensor(t.shape, false);
        launch_dequantize_weight(t.device_data.get(), static_cast<const float*>(t.scale_data.get()),
                                 t.rows(), t.cols(), f.device_ptr(), impl_->stream);
        return to_host(f);
    }
    if (t.storage == model::Storage::bf16) {
        Tensor f = impl_->tensor(t.shape, false);
        launch_from_bf16(t.device_data.get(), t.numel(), f.device_ptr(), impl_->stream);
        return to_host(f);
    }
    if (t.storage == model::Storage::fp8_row) {
        Tensor f = impl_->tensor(t.shape, false);
        launch_dequantize_key_rows(key_table(t), t.rows(), narrow(t.cols()), f.device_ptr(),
                                   impl_->stream);
        Tensor h = to_host(f);
        h.storage = model::Storage::fp8_row;
        return h;
    }
    Tensor h(t.shape);
    if (!h.data.empty()) {
        check_cuda(cudaMemcpyAsync(h.data.data(), t.device_ptr(), h.data.size() * sizeof(float),
                                   cudaMemcpyDeviceToHost, impl_->stream),
                   "cudaMemcpyAsync (to_host)");
    }
    check_cuda(cudaStreamSynchronize(impl_->stream), "cudaStreamSynchronize (to_host)");
    impl_->collect_profile();
    return h;
}

void CudaOps::linear(const Tensor& x, const Tensor& w, Tensor& y) {
    auto timed = impl_->op("linear");
    const std::int64_t m = x.rows(), k = x.cols(), n = w.rows();
    DS_ASSERT(w.cols() == k && y.rows() == m && y.cols() == n, "linear [", m, ",", k, "] x [", n,
              ",", w.cols(), "] -> [", y.rows(), ",", y.cols(), "]");
    impl_->bind();
    impl_->linear(ptr(x), m, k, w, ptr(y));
    const std::pair<const float*, std::int64_t> written[] = {{ptr(y), y.numel()}};
    impl_->keep_fp8_rows(written);
}

void CudaOps::linears(const Tensor& x, std::span<const Tensor* const> ws,
                      std::span<Tensor* const> ys) {
    auto timed = impl_->op("linears");
    DS_ASSERT(ws.size() == ys.size() && !ws.empty(), ws.size(), " ", ys.size());
    const std::int64_t m = x.rows(), k = x.cols();
    const WeightFormat format = format_of(*ws[0]);
    bool one_launch = m <= gemv_rows(format) &&
                      ws.size() <= static_cast<std::size_t>(kGemvMaxSegments) &&
                      gemv_supports(format, narrow(k));
    for (std::size_t i = 0; i < ws.size(); ++i) {
        DS_ASSERT(ws[i]->cols() == k && ys[i]->rows() == m && ys[i]->cols() == ws[i]->rows(),
                  "linear [", m, ",", k, "] x [", ws[i]->rows(), ",", ws[i]->cols(), "] -> [",
                  ys[i]->rows(), ",", ys[i]->cols(), "]");
        one_launch = one_launch && format_of(*ws[i]) == format;
    }
    if (!one_launch) {
        Ops::linears(x, ws, ys);
        return;
    }
    if (m == 0) {
        return;
    }
    impl_->bind();
    std::array<GemvSegment, kGemvMaxSegments> segs{};
    std::array<std::pair<const float*, std::int64_t>, kGemvMaxSegments> written{};
    for (std::size_t i = 0; i < ws.size(); ++i) {
        segs[i] = segment_of(*ws[i], ptr(*ys[i]), ys[i]->cols());
        written[i] = {ptr(*ys[i]), ys[i]->numel()};
    }
    impl_->gemv(format, GemvInput{ptr(x), narrow(k), narrow(k), false}, m, segs.data(),
                static_cast<int>(ws.size()), narrow(m), nullptr);
    impl_->keep_fp8_rows(std::span(written).first(ws.size()));
}

void CudaOps::rms_norm(const Tensor& x, const Tensor& g, float eps, Tensor& y) {
    auto timed = impl_->op("rms_norm");
    DS_ASSERT(g.numel() == x.cols() && y.numel() == x.numel(), x.cols(), " ", g.numel());
    impl_->bind();
    const Fp8Rows fp8 = impl_->fp8_rows_for(x.rows(), x.cols());
    impl_->fp8_rows_written(launch_rms_norm(ptr(x), ptr(g), eps, ptr(y), x.rows(), narrow(x.cols()),
                                            impl_->stream, fp8, impl_->role()),
                            ptr(y), y.rows(), y.cols());
}

void CudaOps::layer_norm(const Tensor& x, const Tensor& g, const Tensor& b, float eps, Tensor& y) {
    auto timed = impl_->op("layer_norm");
    DS_ASSERT(g.numel() == x.cols() && b.numel() == x.cols() && y.numel() == x.numel(), x.cols());
    impl_->bind();
    launch_layer_norm(ptr(x), ptr(g), ptr(b), eps, ptr(y), x.rows(), narrow(x.cols()),
                      impl_->stream);
}

void CudaOps::rope(Tensor& x, int num_heads, int head_stride, int offset, int rope_dim,
                   std::span<const std::int32_t> positions, std::span<const float> inv_freq,
                   float attention_factor, bool interleaved) {
    auto timed = impl_->op("rope");
    DS_ASSERT(static_cast<int>(inv_freq.size()) == rope_dim / 2 &&
                  x.rows() == static_cast<std::int64_t>(positions.size()) &&
                  x.cols() == static_cast<std::int64_t>(num_heads) * head_stride,
              x.rows(), " ", x.cols());
    impl_->bind();
    launch_rope(ptr(x), x.rows(), num_heads, head_stride, offset, rope_dim,
                impl_->upload(positions), impl_->constant(inv_freq), attention_factor, interleaved,
                impl_->stream);
}

// In block FP8 at decode sizes, the product rotates its results as they leave it (gemv.h,
// GemvRope): no rope launch between the queries' product and attention.
void CudaOps::linear_rope(const Tensor& x, const Tensor& w, Tensor& y, int num_heads,
                          int head_stride, int offset, int rope_dim,
                          std::span<const std::int32_t> positions, std::span<const float> inv_freq,
                          float attention_factor, bool interleaved) {
    auto timed = impl_->op("linear_rope");
    const std::int64_t m = x.rows(), k = x.cols();
    const bool fused = interleaved && w.device == model::Device::cuda &&
                       format_of(w) == WeightFormat::fp8_block && m > 0 &&
                       m <= gemv_rows(WeightFormat::fp8_block) &&
                       gemv_supports(WeightFormat::fp8_block, narrow(k)) &&
                       gemv_rope_supports(head_stride, offset, rope_dim);
    if (!fused) {
        linear(x, w, y);
        rope(y, num_heads, head_stride, offset, rope_dim, positions, inv_freq, attention_factor,
             interleaved);
        return;
    }
    DS_ASSERT(w.cols() == k && y.rows() == m && y.cols() == w.rows() &&
                  y.cols() == static_cast<std::int64_t>(num_heads) * head_stride &&
                  static_cast<int>(inv_freq.size()) == rope_dim / 2 &&
                  static_cast<std::int64_t>(positions.size()) == m,
              "linear_rope [", m, ",", k, "] x [", w.rows(), ",", w.cols(), "] -> [", y.rows(), ",",
              y.cols(), "], ", num_heads, " heads of ", head_stride);
    impl_->bind();
    GemvRope r;
    r.positions = impl_->upload(positions);
    r.inv_freq = impl_->constant(inv_freq);
    r.attention_factor = attention_factor;
    r.head_stride = head_stride;
    r.offset = offset;
    r.rope_dim = rope_dim;
    const GemvSegment seg = segment_of(w, ptr(y), w.rows());
    impl_->gemv(WeightFormat::fp8_block, GemvInput{ptr(x), narrow(k), narrow(k), false}, m, &seg, 1,
                narrow(m), nullptr, 0, r);
    const std::pair<const float*, std::int64_t> written[] = {{ptr(y), y.numel()}};
    impl_->keep_fp8_rows(written);
}

void CudaOps::add_rms_norm(Tensor& x, const Tensor& y, const Tensor& g, float eps, Tensor& h) {
    auto timed = impl_->op("add_rms_norm");
    DS_ASSERT(x.numel() == y.numel() && h.numel() == x.numel() && g.numel() == x.cols(), x.numel(),
              " ", y.numel(), " ", g.numel());
    impl_->bind();
    const Fp8Rows fp8 = impl_->fp8_rows_for(x.rows(), x.cols());
    const NormLaunch launched = launch_add_rms_norm(ptr(x), ptr(y), ptr(g), eps, ptr(h), x.rows(),
                                                    narrow(x.cols()), impl_->stream, fp8);
    if (launched == NormLaunch::unsupported) {
        Ops::add_rms_norm(x, y, g, eps, h);
        return;
    }
    impl_->fp8_rows_written(launched == NormLaunch::quantized, ptr(h), h.rows(), h.cols());
}

void CudaOps::store_latent(const Tensor& kv, const Tensor& g, float eps,
                           std::span<const std::int32_t> positions, std::span<const float> inv_freq,
                           float attention_factor, std::span<const std::int32_t> slots,
                           const model::LayerCacheView& cache) {
    auto timed = impl_->op("store_latent");
    const auto lora = static_cast<int>(cache.latent->cols());
    const auto rope_dim = static_cast<int>(cache.rope->cols());
    DS_ASSERT(kv.cols() == lora + rope_dim && g.numel() == lora &&
                  static_cast<std::int64_t>(positions.size()) == kv.rows() &&
                  static_cast<std::int64_t>(slots.size()) == kv.rows() &&
                  static_cast<int>(inv_freq.size()) == rope_dim / 2,
              kv.cols(), " ", lora, " ", rope_dim);
    for (std::int32_t s : slots) {
        DS_ASSERT(s >= 0 && s < cache.latent->rows(), "slot ", s);
    }
    impl_->bind();
    const CacheFormat format = cache_format(cache);
    // The uploads first: one may launch a copy, which the role must know of.
    const std::int32_t* at = impl_->upload(positions);
    const float* freq = impl_->constant(inv_freq);
    const std::int32_t* to = impl_->upload(slots);
    launch_store_latent(ptr(kv), kv.rows(), lora, rope_dim, ptr(g), eps, at, freq, attention_factor,
                        to, format, cache.latent->device_data.get(), cache.rope->device_data.get(),
                        impl_->stream, impl_->role());
}

void CudaOps::store_index_key(const Tensor& k, const Tensor& g, const Tensor& b, float eps,
                              int rope_dim, std::span<const std::int32_t> positions,
                              std::span<const float> inv_freq, float attention_factor,
                              std::span<const std::int32_t> slots, Tensor& index_k) {
    auto timed = impl_->op("store_index_key");
    const auto dim = static_cast<int>(k.cols());
    const bool fp8 = index_k.storage == model::Storage::fp8_row;
    if (dim > kMaxIndexKeyDim && !fp8) {
        Ops::store_index_key(k, g, b, eps, rope_dim, positions, inv_freq, attention_factor, slots,
                             index_k);
        return;
    }
    DS_ASSERT(g.numel() == dim && b.numel() == dim && index_k.cols() == dim && rope_dim % 2 == 0 &&
                  rope_dim <= dim && static_cast<std::int64_t>(positions.size()) == k.rows() &&
                  static_cast<std::int64_t>(slots.size()) == k.rows() &&
                  static_cast<int>(inv_freq.size()) == rope_dim / 2,
              dim, " ", rope_dim, " ", index_k.cols());
    for (std::int32_t s : slots) {
        DS_ASSERT(s >= 0 && s < index_k.rows(), "slot ", s);
    }
    impl_->bind();
    const std::int32_t* at = impl_->upload(positions);
    const float* freq = impl_->constant(inv_freq);
    const std::int32_t* to = impl_->upload(slots);
    if (fp8) {
        launch_store_index_key_fp8(ptr(k), k.rows(), dim, ptr(g), ptr(b), eps, rope_dim, at, freq,
                                   attention_factor, model::hadamard_norm(dim), to,
                                   key_table(index_k), impl_->stream, impl_->role());
        return;
    }
    launch_store_index_key(ptr(k), k.rows(), dim, ptr(g), ptr(b), eps, rope_dim, at, freq,
                           attention_factor, to, ptr(index_k), impl_->stream, impl_->role());
}

void CudaOps::silu_mul(const Tensor& gate, const Tensor& up, Tensor& out) {
    auto timed = impl_->op("silu_mul");
    DS_ASSERT(gate.numel() == up.numel() && out.numel() == gate.numel(), gate.numel());
    impl_->bind();
    launch_silu_mul(ptr(gate), ptr(up), ptr(out), gate.numel(), impl_->stream);
}

void CudaOps::embedding(const Tensor& table, std::span<const std::int32_t> ids, Tensor& out) {
    auto timed = impl_->op("embedding");
    DS_ASSERT(out.rows() == static_cast<std::int64_t>(ids.size()) && out.cols() == table.cols(),
              out.rows());
    DS_ASSERT(table.storage == model::Storage::bf16 || table.storage == model::Storage::f32,
              "an embedding table is float32 or bfloat16");
    for (std::int32_t id : ids) {
        DS_ASSERT(id < table.rows() && (id >= 0 || (id >= -kTokenSlots && impl_->token_slots)),
                  "token id ", id, " outside vocab ", table.rows(), " and the token slots");
    }
    impl_->bind();
    launch_embed_rows(table.device_data.get(), table.storage == model::Storage::bf16,
                      impl_->upload(ids),
                      static_cast<const std::int32_t*>(impl_->token_slots.get()), out.rows(),
                      narrow(table.cols()), ptr(out), impl_->stream);
}

void CudaOps::add(Tensor& x, const Tensor& y) {
    auto timed = impl_->op("add");
    DS_ASSERT(x.numel() == y.numel(), x.numel(), " ", y.numel());
    impl_->bind();
    launch_add(ptr(x), ptr(y), x.numel(), impl_->stream);
}

void CudaOps::copy_cols(const Tensor& src, int src_col, Tensor& dst, int dst_col, int n) {
    auto timed = impl_->op("copy_cols");
    DS_ASSERT(src.rows() == dst.rows() && src_col + n <= src.cols() && dst_col + n <= dst.cols(),
              src.rows(), " ", dst.rows());
    if (src.rows() == 0 || n == 0) {
        return;
    }
    impl_->bind();
    check_cuda(cudaMemcpy2DAsync(
                   ptr(dst) + dst_col, static_cast<std::size_t>(dst.cols()) * 4, ptr(src) + src_col,
                   static_cast<std::size_t>(src.cols()) * 4, static_cast<std::size_t>(n) * 4,
                   static_cast<std::size_t>(src.rows()), cudaMemcpyDeviceToDevice, impl_->stream),
               "cudaMemcpy2DAsync (copy_cols)");
}

void CudaOps::scale(Tensor& x, float s) {
    auto timed = impl_->op("scale");
    impl_->bind();
    launch_scale(ptr(x), s, x.numel(), impl_->stream);
}

void CudaOps::gather_rows(const Tensor& src, std::span<const std::int64_t> rows, Tensor& dst) {
    auto timed = impl_->op("gather_rows");
    DS_ASSERT(dst.rows() == static_cast<std::int64_t>(rows.size()) && src.cols() == dst.cols(),
              dst.rows(), " ", rows.size());
    for (std::int64_t r : rows) {
        DS_ASSERT(r >= 0 && r < src.rows(), "row ", r);
    }
    impl_->bind();
    launch_gather_rows(ptr(src), impl_->upload(rows), dst.rows(), narrow(src.cols()), ptr(dst),
                       impl_->stream);
}

void CudaOps::scatter_rows(const Tensor& src, std::span<const std::int32_t> slots, Tensor& dst) {
    auto timed = impl_->op("scatter_rows");
    DS_ASSERT(src.rows() == static_cast<std::int64_t>(slots.size()) && src.cols() == dst.cols(),
              src.rows(), " ", slots.size());
    for (std::int32_t s : slots) {
        DS_ASSERT(s >= 0 && s < dst.rows(), "slot ", s);
    }
    impl_->bind();
    launch_scatter_rows(ptr(src), impl_->upload(slots), src.rows(), narrow(src.cols()), ptr(dst),
                        impl_->stream);
}

// Only the token ids travel: 4 bytes a row instead of the row's vocab floats.
std::vector<std::int32_t> CudaOps::argmax_rows(const Tensor& logits,
                                               std::span<const std::int64_t> rows) {
    if (rows.empty()) {
        return {};
    }
    check_rows(logits, rows);
    return impl_->ids_to_host(rows.size(), "argmax_rows", [&](std::int32_t* ids) {
        const ArgmaxSplit split = impl_->argmax_split_for(rows.size(), logits.cols());
        launch_argmax_rows(ptr(logits), logits.cols(), impl_->upload(rows),
                           narrow(static_cast<std::int64_t>(rows.size())), narrow(logits.cols()),
                           ids, nullptr, &split, impl_->stream);
    });
}

// The upload ring reuses a buffer whose bytes compare equal, so the params carry no padding.
static_assert(sizeof(SampleRow) == 32 && std::is_trivially_copyable_v<SampleRow>);

// Like argmax_rows, only ids come back; the params go up through the upload ring.
std::optional<std::vector<std::int32_t>> CudaOps::sample_rows(
    const Tensor& logits, std::span<const model::RowSampling> rows) {
    if (logits.on_host()) {
        return std::nullopt;
    }
    if (rows.empty()) {
        return std::vector<std::int32_t>{};
    }
    const std::vector<SampleRow> params = sample_params(logits, rows);
    return impl_->ids_to_host(rows.size(), "sample_rows", [&](std::int32_t* ids) {
        launch_sample_rows(ptr(logits), logits.cols(),
                           impl_->upload(std::span<const SampleRow>(params)),
                           narrow(static_cast<std::int64_t>(rows.size())), narrow(logits.cols()),
                           ids, nullptr, impl_->stream);
    });
}

void CudaOps::begin_independent() {
    impl_->independent = true;
    impl_->independent_kernels = 0;
}

void CudaOps::end_independent() {
    impl_->independent = false;
}

// The picks stay on the device for the next forward's embedding, and the kernels also write them
// to mapped pinned memory: no copy sits between this step's last kernel and the next one's
// first, and an event lets collect_tokens wait for just this step's tokens.
bool CudaOps::pick_tokens_async(const Tensor& logits, std::span<const std::int64_t> greedy,
                                std::span<const model::RowSampling> draws, std::int32_t first) {
    if (logits.on_host()) {
        return false;
    }
    const auto n = static_cast<std::int64_t>(greedy.size() + draws.size());
    DS_ASSERT(first >= 0 && n <= kTokenSlots - first, "token slots [", first, ", +", n, ") past ",
              kTokenSlots);
    check_rows(logits, greedy);
    const std::vector<SampleRow> params = sample_params(logits, draws);
    impl_->bind();
    impl_->token_slots_ready();
    std::int32_t* slots = static_cast<std::int32_t*>(impl_->token_slots.get()) + first;
    std::int32_t* mirror = impl_->token_slots_mapped + first;
    {
        auto timed = impl_->op("pick_tokens");
        if (!greedy.empty()) {
            const ArgmaxSplit split = impl_->argmax_split_for(greedy.size(), logits.cols());
            launch_argmax_rows(ptr(logits), logits.cols(), impl_->upload(greedy),
                               narrow(static_cast<std::int64_t>(greedy.size())),
                               narrow(logits.cols()), slots, mirror, &split, impl_->stream);
        }
        if (!params.empty()) {
            launch_sample_rows(
                ptr(logits), logits.cols(), impl_->upload(std::span<const SampleRow>(params)),
                narrow(static_cast<std::int64_t>(params.size())), narrow(logits.cols()),
                slots + greedy.size(), mirror + greedy.size(), impl_->stream);
        }
    }
    cudaEvent_t& copied = impl_->token_copies[first];
    if (copied == nullptr) {
        check_cuda(cudaEventCreateWithFlags(&copied, cudaEventDisableTiming), "cudaEventCreate");
    }
    check_cuda(cudaEventRecord(copied, impl_->stream), "cudaEventRecord (token slots)");
    return true;
}

std::vector<std::int32_t> CudaOps::collect_tokens(std::int32_t first, std::int32_t n) {
    const auto it = impl_->token_copies.find(first);
    DS_ASSERT(it != impl_->token_copies.end() && n >= 0 && n <= kTokenSlots - first,
              "token slots [", first, ", +", n, ") were never picked into");
    impl_->bind();
    check_cuda(cudaEventSynchronize(it->second), "cudaEventSynchronize (token slots)");
    impl_->collect_profile();
    return {impl_->token_slots_host + first, impl_->token_slots_host + first + n};
}

Tensor CudaOps::rows_to_host(const Tensor& t, std::span<const std::int64_t> rows) {
    if (t.on_host()) {
        return Ops::rows_to_host(t, rows);
    }
    for (std::int64_t r : rows) {
        DS_ASSERT(r >= 0 && r < t.rows(), "row ", r, " of ", t.rows());
    }
    impl_->bind();
    Tensor picked = impl_->tensor({static_cast<std::int64_t>(rows.size()), t.cols()}, false);
    if (!rows.empty()) {
        launch_gather_rows(ptr(t), impl_->upload(rows), picked.rows(), narrow(t.cols()),
                           ptr(picked), impl_->stream);
    }
    Tensor h(picked.shape);
    if (!h.data.empty()) {
        check_cuda(
            cudaMemcpyAsync(h.data.data(), picked.device_ptr(), h.data.size() * sizeof(float),
                            cudaMemcpyDeviceToHost, impl_->stream),
            "cudaMemcpyAsync (rows_to_host)");
    }
    check_cuda(cudaStreamSynchronize(impl_->stream), "cudaStreamSynchronize (rows_to_host)");
    return h;
}

namespace {

// The CUDA form of an index selection (model::IndexSelection::device): every new token's key
// slots in one device buffer that mla_attention reads as it is, so that neither the choice nor
// the slot lists travel through the host. Tokens that see at most top_k positions point into
// their sequence's slot table; the others at their top_k chosen slots, mapped on the device.
struct DeviceSelection {
    std::shared_ptr<void> buffer;  // int32: [slot tables | chosen slots | offsets | counts]
    const std::int32_t* slots = nullptr;
    const std::int32_t* offset = nullptr;
    const std::int32_t* count = nullptr;
    int tokens = 0, max_count = 0;
    // For selection_positions: the chosen positions of each scored row, which token each scored
    // row is, and every token's visible count.
    std::shared_ptr<void> chosen;
    std::vector<std::int32_t> scored, visible;
    int top_k = 0;
};

}  // namespace

model::IndexSelection CudaOps::indexer_topk(const Tensor& q, const Tensor& weights,
                                            std::span<const model::SequenceSlots> seqs,
                                            const Tensor& index_k, int num_heads, int head_dim,
                                            float scale, int top_k) {
    auto timed = impl_->op("indexer_topk");
    impl_->bind();
    auto sel = std::make_shared<DeviceSelection>();
    sel->top_k = top_k;
    if (impl_->graph.mode != GraphStep::eager) {
        return graph_indexer_topk(q, weights, seqs, index_k, num_heads, head_dim, scale, top_k,
                                  std::move(sel));
    }
    // Every token's visible slots, as causal attention reads them; tokens that see more than
    // top_k positions are scored and then read their top_k chosen slots, placed after the tables.
    Impl::Keys keys = Impl::causal_keys(seqs);
    sel->visible = keys.count;
    const auto table_size = static_cast<std::int64_t>(keys.slots.size());
    std::vector<std::int32_t> q_row, row_base, row_count;
    for (std::size_t r = 0; r < keys.count.size(); ++r) {
        if (keys.count[r] <= top_k) {
            continue;
        }
        row_base.push_back(keys.offset[r]);
        row_count.push_back(keys.count[r]);
        keys.offset[r] = static_cast<std::int32_t>(
            table_size + std::int64_t{top_k} * static_cast<std::int64_t>(q_row.size()));
        keys.count[r] = top_k;
        q_row.push_back(static_cast<std::int32_t>(r));
    }
    if (q_row.empty()) {
        return {};  // every token keeps all of its positions
    }
    const auto rows = static_cast<std::int64_t>(q_row.size());
    const auto tokens = static_cast<std::int64_t>(keys.count.size());
    const int max_scored = *std::max_element(row_count.begin(), row_count.end());
    sel->tokens = static_cast<int>(tokens);
    sel->max_count = *std::max_element(keys.count.begin(), keys.count.end());
    sel->scored = q_row;
    // One device buffer, [slot tables | chosen slots | offsets | counts]. The tables and the
    // offsets and counts go up through the ring; the chosen slots are written on the device.
    const std::int64_t chosen_end = table_size + rows * top_k;
    sel->buffer = impl_->transient(static_cast<std::size_t>(chosen_end + 2 * tokens) * 4);
    auto* buf = static_cast<std::int32_t*>(sel->buffer.get());
    keys.offset.insert(keys.offset.end(), keys.count.begin(), keys.count.end());
    for (auto [at, values] :
         {std::pair{std::int64_t{0}, &keys.slots}, std::pair{chosen_end, &keys.offset}}) {
        check_cuda(cudaMemcpyAsync(buf + at, impl_->upload(std::span<const std::int32_t>(*values)),
                                   values->size() * 4, cudaMemcpyDeviceToDevice, impl_->stream),
                   "cudaMemcpyAsync (index selection)");
    }
    sel->slots = buf;
    sel->offset = buf + chosen_end;
    sel->count = sel->offset + tokens;

    Tensor score = impl_->tensor({rows, max_scored}, false);
    const std::int32_t* d_count = impl_->upload(std::span<const std::int32_t>(row_count));
    const std::int32_t* d_base = impl_->upload(std::span<const std::int32_t>(row_base));
    const std::int32_t* d_q_row = impl_->upload(std::span<const std::int32_t>(q_row));
    if (index_k.storage == model::Storage::fp8_row) {
        // Queries rotated and quantized per head, then the scores of groups of rows sharing a
        // key list (a sequence's tokens), each key tile read once for the group.
        std::vector<std::int32_t> group_first;
        for (std::int64_t r = 0; r < rows; ++r) {
            if (group_first.empty() || row_base[r] != row_base[group_first.back()] ||
                r - group_first.back() == kIndexerGroupRows) {
                group_first.push_back(static_cast<std::int32_t>(r));
            }
        }
        const auto groups = static_cast<int>(group_first.size());
        group_first.push_back(static_cast<std::int32_t>(rows));
        auto q8 = impl_->transient(static_cast<std::size_t>(rows * num_heads * head_dim));
        Tensor wq = impl_->tensor({rows, num_heads}, false);
        launch_indexer_quantize_q(ptr(q), ptr(weights), d_q_row, static_cast<int>(rows), num_heads,
                                  head_dim, model::hadamard_norm(head_dim), scale,
                                  static_cast<unsigned char*>(q8.get()), ptr(wq), impl_->stream);
        launch_indexer_scores_fp8(
            static_cast<const unsigned char*>(q8.get()), ptr(wq), key_table(index_k), buf, d_base,
            d_count, impl_->upload(std::span<const std::int32_t>(group_first)), groups, max_scored,
            num_heads, head_dim, max_scored, ptr(score), impl_->stream);
    } else {
        launch_indexer_scores(ptr(q), ptr(weights), ptr(index_k), d_q_row, buf, d_base, d_count,
                              static_cast<int>(rows), max_scored, num_heads, head_dim, scale,
                              max_scored, ptr(score), impl_->stream);
    }
    sel->chosen = impl_->transient(static_cast<std::size_t>(rows * top_k) * 4);
    auto* chosen = static_cast<std::int32_t*>(sel->chosen.get());
    launch_row_topk(ptr(score), max_scored, d_count, static_cast<int>(rows), top_k, chosen,
                    impl_->stream);
    launch_positions_to_slots(chosen, static_cast<int>(rows), top_k, buf, d_base, buf + table_size,
                              impl_->stream);
    model::IndexSelection out;
    out.device = std::move(sel);
    return out;
}

// In a graph step every token is scored over the step's key bound (the staged key lists), so that
// the recording does not follow which tokens see more than top_k positions: one that sees fewer
// gets all of them, in order, from the top-k, the list causal attention would read.
model::IndexSelection CudaOps::graph_indexer_topk(const Tensor& q, const Tensor& weights,
                                                  std::span<const model::SequenceSlots> seqs,
                                                  const Tensor& index_k, int num_heads,
                                                  int head_dim, float scale, int top_k,
                                                  std::shared_ptr<void> selection) {
    const auto& g = impl_->graph;
    const int rows = g.tokens, keys = g.max_keys;
    DS_ASSERT(static_cast<int>(seqs.size()) == rows && q.rows() == rows, seqs.size(), " ", rows);
    auto& sel = *std::static_pointer_cast<DeviceSelection>(selection);
    sel.tokens = rows;
    sel.max_count = top_k;
    sel.scored.resize(static_cast<std::size_t>(rows));
    std::iota(sel.scored.begin(), sel.scored.end(), 0);
    for (const auto& s : seqs) {
        sel.visible.push_back(s.num_cached + s.num_new);
    }
    const auto listed = static_cast<std::size_t>(rows) * static_cast<std::size_t>(top_k);
    sel.chosen = impl_->transient(listed * 4);
    sel.buffer = impl_->transient((listed + static_cast<std::size_t>(rows)) * 4);
    auto* slots = static_cast<std::int32_t*>(sel.buffer.get());
    std::vector<std::int32_t> offsets(static_cast<std::size_t>(rows));
    for (int r = 0; r < rows; ++r) {
        offsets[static_cast<std::size_t>(r)] = r * top_k;
    }
    sel.slots = slots;
    sel.offset = impl_->constant(offsets);
    sel.count = slots + listed;

    Tensor score = impl_->tensor({rows, keys}, false);
    if (index_k.storage == model::Storage::fp8_row) {
        auto q8 = impl_->transient(static_cast<std::size_t>(rows) * num_heads * head_dim);
        Tensor wq = impl_->tensor({rows, num_heads}, false);
        launch_indexer_quantize_q(ptr(q), ptr(weights), impl_->iota(rows), rows, num_heads,
                                  head_dim, model::hadamard_norm(head_dim), scale,
                                  static_cast<unsigned char*>(q8.get()), ptr(wq), impl_->stream);
        launch_indexer_scores_fp8(static_cast<const unsigned char*>(q8.get()), ptr(wq),
                                  key_table(index_k), g.keys, g.key_offset, g.key_count,
                                  impl_->iota(rows + 1), rows, keys, num_heads, head_dim, keys,
                                  ptr(score), impl_->stream);
    } else {
        launch_indexer_scores(ptr(q), ptr(weights), ptr(index_k), impl_->iota(rows), g.keys,
                              g.key_offset, g.key_count, rows, keys, num_heads, head_dim, scale,
                              keys, ptr(score), impl_->stream);
    }
    auto* chosen = static_cast<std::int32_t*>(sel.chosen.get());
    launch_row_topk(ptr(score), keys, g.key_count, rows, top_k, chosen, impl_->stream);
    launch_positions_to_slots(chosen, rows, top_k, g.keys, g.key_offset, slots, impl_->stream,
                              g.key_count, slots + listed);
    model::IndexSelection out;
    out.device = std::move(selection);
    return out;
}

std::vector<std::vector<std::int32_t>> CudaOps::selection_positions(
    const model::IndexSelection& selection) {
    if (!selection.device) {
        return selection.positions;
    }
    const auto& sel = *static_cast<const DeviceSelection*>(selection.device.get());
    impl_->bind();
    std::vector<std::int32_t> host(sel.scored.size() * static_cast<std::size_t>(sel.top_k));
    check_cuda(cudaMemcpyAsync(host.data(), sel.chosen.get(), host.size() * 4,
                               cudaMemcpyDeviceToHost, impl_->stream),
               "cudaMemcpyAsync (indexer top-k)");
    check_cuda(cudaStreamSynchronize(impl_->stream), "cudaStreamSynchronize (indexer top-k)");
    std::vector<std::vector<std::int32_t>> out(sel.visible.size());
    for (std::size_t t = 0; t < out.size(); ++t) {
        out[t].resize(static_cast<std::size_t>(sel.visible[t]));
        std::iota(out[t].begin(), out[t].end(), 0);
    }
    for (std::size_t i = 0; i < sel.scored.size(); ++i) {
        const std::int32_t* r = host.data() + i * static_cast<std::size_t>(sel.top_k);
        // A graph step scores tokens that see top_k positions or fewer too; their lists end at -1.
        const auto token = static_cast<std::size_t>(sel.scored[i]);
        out[token].assign(r, r + std::min(sel.top_k, sel.visible[token]));
    }
    return out;
}

void CudaOps::mla_attention(const Tensor& q, std::span<const model::SequenceSlots> seqs,
                            const model::LayerCacheView& cache, const Tensor& kv_b,
                            const model::MlaParams& p, const model::IndexSelection& selected,
                            Tensor& out) {
    auto timed = impl_->op("mla_attention");
    const std::int64_t t = q.rows();
    const int heads = p.num_heads, nope = p.qk_nope_head_dim, rope = p.qk_rope_head_dim;
    const int lora = p.kv_lora_rank, v = p.v_head_dim, qk = nope + rope;
    check_mla_shapes(q, kv_b, p, selected, out);
    if (t == 0) {
        return;
    }
    impl_->bind();
    // A graph step reads its staged key lists (every token's visible slots), planned for its key
    // bound: the recording serves every step of the key.
    const auto& g = impl_->graph;
    const bool graphed = g.mode != GraphStep::eager;
    std::int64_t visible = 0;
    for (const auto& sq : seqs) {
        visible += sq.num_cached + sq.num_new;
    }
    if (!graphed && selected.empty() && cache_format(cache) == CacheFormat::bf16 &&
        mha_prefill_supports(nope, rope, v) && lora % 8 == 0 && t >= impl_->mha_tokens &&
        visible <= 2 * t && visible <= kMhaMaxKeys) {
        impl_->mha_prefill(q, seqs, cache, kv_b, p, out);
        return;
    }
    Impl::Keys keys;
    const auto* on_device = static_cast<const DeviceSelection*>(selected.device.get());
    if (on_device != nullptr) {
        DS_ASSERT(on_device->tokens == t, on_device->tokens, " ", t);
        keys.max_count = on_device->max_count;
    } else if (graphed && selected.empty()) {
        keys.max_count = g.max_keys;
    } else if (selected.empty()) {
        keys = Impl::causal_keys(seqs);
    } else {
        std::size_t r = 0;
        for (const auto& s : seqs) {
            for (std::int32_t j = 0; j < s.num_new; ++j, ++r) {
                const std::int32_t pos = s.num_cached + j;
                keys.offset.push_back(static_cast<std::int32_t>(keys.slots.size()));
                keys.count.push_back(static_cast<std::int32_t>(selected.positions[r].size()));
                keys.max_count = std::max(keys.max_count, keys.count.back());
                for (std::int32_t position : selected.positions[r]) {
                    DS_ASSERT(position >= 0 && position <= pos, "position ", position, " > ", pos);
                    keys.slots.push_back(s.slots[static_cast<std::size_t>(position)]);
                }
            }
        }
    }
    // kv_b in FP8 or BF16 goes through our absorb kernels up to kAbsorbTokens rows; beyond, and
    // for shapes they do not take, it is dequantized for this call and cuBLAS runs the products.
    // Float32 keeps cuBLAS.
    DS_ASSERT(kv_b.device == model::Device::cuda, "kv_b_proj is not on the device");
    const WeightFormat format = format_of(kv_b);
    const AbsorbShape absorb{narrow(t), heads, nope, rope, v, lora};
    const bool kernels =
        format != WeightFormat::f32 && t <= kAbsorbTokens && absorb_supports(format, absorb);
    const AbsorbWeight weight{format, kv_b.device_data.get(),
                              static_cast<const float*>(kv_b.scale_data.get()),
                              static_cast<int>(weight_scale_stride(lora))};
    std::shared_ptr<void> dequantized;
    const float* w32 = nullptr;
    if (format == WeightFormat::f32) {
        w32 = ptr(kv_b);
    } else if (!kernels) {
        dequantized = impl_->transient(static_cast<std::size_t>(kv_b.numel()) * sizeof(float));
        w32 = static_cast<const float*>(dequantized.get());
        if (format == WeightFormat::fp8_block) {
            launch_dequantize_weight(
                kv_b.device_data.get(), static_cast<const float*>(kv_b.scale_data.get()),
                kv_b.rows(), kv_b.cols(), static_cast<float*>(dequantized.get()), impl_->stream);
        } else {
            launch_from_bf16(kv_b.device_data.get(), kv_b.numel(),
                             static_cast<float*>(dequantized.get()), impl_->stream);
        }
    }
    const float one = 1.0f, zero = 0.0f;
    // Absorb W_UK into the query: q_lat[t, h] = q_nope[t, h] W_UK_h, one product per head.
    Tensor q_lat = impl_->tensor({t, static_cast<std::int64_t>(heads) * lora}, false);
    if (kernels) {
        launch_absorb_q(weight, absorb, ptr(q), ptr(q_lat), impl_->stream);
    } else {
        check_cublas(cublasSgemmStridedBatched(
                         impl_->blas, CUBLAS_OP_N, CUBLAS_OP_N, lora, narrow(t), nope, &one, w32,
                         lora, static_cast<long long>(nope + v) * lora, ptr(q), heads * qk, qk,
                         &zero, ptr(q_lat), heads * lora, lora, heads),
                     str_cat("absorb W_UK: ", t, " tokens x ", heads, " heads"));
    }
    Tensor o_lat = impl_->tensor({t, static_cast<std::int64_t>(heads) * lora}, false);
    MlaShape shape{narrow(t), heads, lora, rope, nope, qk, p.softmax_scale};
    // Split-key attention reading each key row once per 16 heads (mla_decode.h); it falls back
    // to the per-head kernel for shapes it does not take.
    const CacheFormat cache_fmt = cache_format(cache);
    std::shared_ptr<void> workspace =
        impl_->transient(mla_decode_workspace_bytes(shape, keys.max_count, cache_fmt));
    const auto upload = [&](const std::vector<std::int32_t>& values) {
        return impl_->upload(std::span<const std::int32_t>(values));
    };
    const std::int32_t *key_slots = nullptr, *key_offset = nullptr, *key_count = nullptr;
    if (on_device != nullptr) {
        key_slots = on_device->slots;
        key_offset = on_device->offset;
        key_count = on_device->count;
    } else if (graphed && selected.empty()) {
        key_slots = g.keys;
        key_offset = g.key_offset;
        key_count = g.key_count;
    } else {
        key_slots = upload(keys.slots);
        key_offset = upload(keys.offset);
        key_count = upload(keys.count);
    }
    launch_mla_decode(ptr(q_lat), ptr(q), cache_fmt, cache.latent->device_data.get(),
                      cache.rope->device_data.get(), key_slots, key_offset, key_count, shape,
                      keys.max_count, workspace.get(), ptr(o_lat), impl_->stream);
    // out[t, h] = o_lat[t, h] W_UV_h^T.
    if (kernels) {
        launch_absorb_out(weight, absorb, ptr(o_lat), ptr(out), impl_->stream);
    } else {
        check_cublas(
            cublasSgemmStridedBatched(impl_->blas, CUBLAS_OP_T, CUBLAS_OP_N, v, narrow(t), lora,
                                      &one, w32 + static_cast<std::ptrdiff_t>(nope) * lora, lora,
                                      static_cast<long long>(nope + v) * lora, ptr(o_lat),
                                      heads * lora, lora, &zero, ptr(out), heads * v, v, heads),
            str_cat("apply W_UV: ", t, " tokens x ", heads, " heads"));
    }
}

void CudaOps::begin_forward(std::span<const std::int32_t> ids,
                            std::span<const std::int32_t> positions,
                            std::span<const std::int32_t> slots,
                            std::span<const model::SequenceSlots> seqs) {
    impl_->bind();
    auto& g = impl_->graph;
    if (g.mode != GraphStep::eager) {
        DS_ASSERT(g.mode == GraphStep::run || g.mode == GraphStep::record,
                  "a forward in a replayed step");
        DS_ASSERT(positions.size() == ids.size() && slots.size() == ids.size(), positions.size());
        {
            auto timed = impl_->op("begin_forward");
            impl_->stage_graph_inputs(ids, seqs);
        }
        g.ids_host = ids.data();
        g.positions_host = positions.data();
        g.slots_host = slots.data();
        // FP8 rows of an earlier step would be freed inside the recording.
        impl_->fp8_shadow = {};
        if (g.mode == GraphStep::record) {
            check_cuda(cudaStreamBeginCapture(impl_->stream, cudaStreamCaptureModeThreadLocal),
                       "cudaStreamBeginCapture");
            impl_->capture->on = true;
        }
        return;
    }
    auto timed = impl_->op("begin_forward");
    // What embedding, rope, the cache writes and causal attention will ask for.
    const Impl::Keys keys = Impl::causal_keys(seqs);
    const std::span<const std::int32_t> arrays[] = {ids,        positions,   slots,
                                                    keys.slots, keys.offset, keys.count};
    impl_->upload_together(arrays);
}

GraphStep CudaOps::begin_graph_step(const void* owner, int tokens, int max_keys) {
    auto& g = impl_->graph;
    DS_ASSERT(g.mode == GraphStep::eager, "a graph step began inside another");
    DS_ASSERT(tokens > 0 && max_keys > 0, tokens, " ", max_keys);
    const Impl::GraphKey key{owner, tokens, max_keys};
    if (impl_->graphs_refused.contains(key)) {
        return GraphStep::eager;
    }
    impl_->bind();
    impl_->token_slots_ready();  // the embedding of every recording reads them
    g.mode = impl_->graphs.contains(key)       ? GraphStep::replay
             : impl_->graphs_ran.contains(key) ? GraphStep::record
                                               : GraphStep::run;
    g.owner = owner;
    g.tokens = tokens;
    g.max_keys = max_keys;
    g.refused_by = nullptr;
    return g.mode;
}

void CudaOps::drop_graph_steps(const void* owner) {
    auto& i = *impl_;
    DS_ASSERT(i.graph.mode == GraphStep::eager, "graph steps dropped inside one");
    i.bind();
    check_cuda(cudaStreamSynchronize(i.stream), "cudaStreamSynchronize (graph steps)");
    std::erase_if(i.graphs, [&](const auto& g) {
        if (std::get<0>(g.first) != owner) {
            return false;
        }
        cudaGraphExecDestroy(g.second);
        return true;
    });
    std::erase_if(i.graphs_ran, [&](const auto& k) { return std::get<0>(k) == owner; });
    std::erase_if(i.graphs_refused, [&](const auto& k) { return std::get<0>(k) == owner; });
}

void CudaOps::end_graph_step() {
    auto& g = impl_->graph;
    DS_ASSERT(g.mode == GraphStep::run || g.mode == GraphStep::record,
              "end_graph_step without a run or recorded step");
    impl_->bind();
    const Impl::GraphKey key = impl_->graph_key();
    if (g.mode == GraphStep::record) {
        cudaGraph_t recorded = nullptr;
        check_cuda(impl_->end_capture(&recorded), "cudaStreamEndCapture");
        cudaGraphExec_t exec = nullptr;
        check_cuda(cudaGraphInstantiate(&exec, recorded, 0), "cudaGraphInstantiate");
        cudaGraphDestroy(recorded);
        impl_->graphs[key] = exec;
        impl_->launch_graph(exec);
    } else {
        impl_->graphs_ran.insert(key);
        if (g.refused_by != nullptr) {
            impl_->graphs_refused.insert(key);
            log::warn("decode batch ", g.tokens, ", up to ", g.max_keys,
                      " keys, is not recorded as a CUDA graph (", g.refused_by,
                      " sends data of its own, as for weights the device kernels do not take); "
                      "they run kernel by kernel");
        }
        if (impl_->arena->peak > impl_->arena->capacity) {
            impl_->grow_arena();
        }
    }
    impl_->leave_graph_step();
}

void CudaOps::abandon_graph_step() {
    auto& g = impl_->graph;
    DS_ASSERT(g.mode == GraphStep::run || g.mode == GraphStep::record,
              "abandon_graph_step without a run or recorded step");
    impl_->bind();
    if (impl_->capture->on) {
        cudaGraph_t partial = nullptr;
        if (impl_->end_capture(&partial) == cudaSuccess && partial != nullptr) {
            cudaGraphDestroy(partial);
        }
        cudaGetLastError();  // a capture broken by the failure is not an error to report later
    }
    impl_->graphs_refused.insert(impl_->graph_key());
    log::warn("decode batch ", g.tokens, ", up to ", g.max_keys,
              " keys, failed inside a CUDA graph step; batches of its size and context bound run "
              "without graphs from now on");
    impl_->leave_graph_step();
}

void CudaOps::replay_graph_step(std::span<const std::int32_t> ids,
                                std::span<const model::SequenceSlots> seqs) {
    auto& g = impl_->graph;
    DS_ASSERT(g.mode == GraphStep::replay, "replay_graph_step without a recording to replay");
    impl_->bind();
    impl_->stage_graph_inputs(ids, seqs);
    impl_->launch_graph(impl_->graphs.at(impl_->graph_key()));
    impl_->leave_graph_step();
}

void CudaOps::swiglu_mlp(const Tensor& x, const model::ExpertWeights& mlp, Tensor& y) {
    auto timed = impl_->op("swiglu_mlp");
    const std::int64_t m = x.rows(), hidden = x.cols(), inter = mlp.gate->rows();
    const WeightFormat format = format_of(*mlp.gate);
    const bool gemv = format == WeightFormat::fp8_block && m <= kFp8GemvRows &&
                      format_of(*mlp.up) == format && format_of(*mlp.down) == format &&
                      mlp.up->rows() == inter && mlp.down->cols() == inter &&
                      gemv_supports(format, narrow(hidden)) && gemv_supports(format, narrow(inter));
    if (!gemv || m == 0) {
        Ops::swiglu_mlp(x, mlp, y);
        return;
    }
    DS_ASSERT(mlp.gate->cols() == hidden && mlp.up->cols() == hidden && y.rows() == m &&
                  y.cols() == mlp.down->rows(),
              hidden, " ", inter);
    impl_->bind();
    // Rows of [gate | up]; the down projection's quantizer applies SiLU(gate) * up as it reads
    // them, as the MoE path does: no separate activation kernel.
    Tensor gate_up = impl_->tensor({m, 2 * inter}, false);
    const GemvSegment gu[2] = {segment_of(*mlp.gate, ptr(gate_up), 2 * inter),
                               segment_of(*mlp.up, ptr(gate_up) + inter, 2 * inter)};
    impl_->gemv(format, GemvInput{ptr(x), narrow(hidden), narrow(hidden), false}, m, gu, 2,
                narrow(m), nullptr);
    const GemvSegment down = segment_of(*mlp.down, ptr(y), y.cols());
    impl_->gemv(format, GemvInput{ptr(gate_up), narrow(2 * inter), narrow(inter), true}, m, &down,
                1, narrow(m), nullptr);
}

void CudaOps::moe_experts(const Tensor& x, const model::MoeRouting& routing,
                          std::span<const model::ExpertWeights> experts, Tensor& out) {
    auto timed = impl_->op("moe_experts");
    const std::int64_t t = x.rows(), hidden = x.cols();
    const int top_k = routing.top_k;
    if (t == 0) {
        return;
    }
    impl_->bind();
    // Permute token copies into expert order; pos[t, k] is where (t, k) landed. Each token's
    // experts are combined in ascending expert order, as the CPU backend adds them.
    std::vector<std::vector<std::int32_t>> assigned(experts.size());
    for (std::int64_t i = 0; i < t * top_k; ++i) {
        auto e = static_cast<std::size_t>(routing.experts[static_cast<std::size_t>(i)]);
        DS_ASSERT(e < experts.size(), "expert ", e);
        assigned[e].push_back(static_cast<std::int32_t>(i));
    }
    // In FP8 every expert's rows are padded to a multiple of 4 (cuBLASLt's block-scaled matmul
    // needs it); padding rows gather zeros (index -1) and are never combined.
    auto is_fp8 = [&](const model::Tensor* model::ExpertWeights::*which) {
        return !experts.empty() && (experts[0].*which)->storage == model::Storage::fp8_block;
    };
    const bool fp8 = is_fp8(&model::ExpertWeights::gate) || is_fp8(&model::ExpertWeights::up) ||
                     is_fp8(&model::ExpertWeights::down);
    std::vector<std::int32_t> perm_rows, pos(static_cast<std::size_t>(t * top_k));
    std::vector<std::int32_t> starts;  // expert e's rows are [starts[e], starts[e + 1])
    for (std::size_t e = 0; e < experts.size(); ++e) {
        starts.push_back(static_cast<std::int32_t>(perm_rows.size()));
        for (std::int32_t i : assigned[e]) {
            pos[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(perm_rows.size());
            perm_rows.push_back(i / top_k);
        }
        while (fp8 && perm_rows.size() % 4 != 0) {
            perm_rows.push_back(-1);
        }
    }
    starts.push_back(static_cast<std::int32_t>(perm_rows.size()));
    std::vector<std::int32_t> order_pos(pos.size());
    std::vector<float> order_weight(pos.size());
    std::vector<int> ks(static_cast<std::size_t>(top_k));
    for (std::int64_t i = 0; i < t; ++i) {
        std::iota(ks.begin(), ks.end(), 0);
        std::sort(ks.begin(), ks.end(), [&](int a, int b) {
            return routing.experts[static_cast<std::size_t>(i * top_k + a)] <
                   routing.experts[static_cast<std::size_t>(i * top_k + b)];
        });
        for (int k = 0; k < top_k; ++k) {
            const auto src = static_cast<std::size_t>(i * top_k + ks[static_cast<std::size_t>(k)]);
            order_pos[static_cast<std::size_t>(i * top_k + k)] = pos[src];
            order_weight[static_cast<std::size_t>(i * top_k + k)] = routing.weights[src];
        }
    }
    const auto n = static_cast<std::int64_t>(perm_rows.size());
    const std::int64_t inter = experts.empty() ? 0 : experts[0].gate->rows();
    Tensor xe = impl_->tensor({n, hidden}, false), gate = impl_->tensor({n, inter}, false),
           up = impl_->tensor({n, inter}, false), ye = impl_->tensor({n, hidden}, false);
    launch_gather_rows(ptr(x), impl_->upload(std::span<const std::int32_t>(perm_rows)), n,
                       narrow(hidden), ptr(xe), impl_->stream);
    // Each expert's product over its own rows; in FP8 the rows are quantized once for all.
    auto products = [&](const float* in, std::int64_t k,
                        const model::Tensor* model::ExpertWeights::*which, float* result,
                        std::int64_t n_out) {
        // A projection's format is the same in every expert (checked below); each may differ
        // from the others (a down projection too narrow for FP8 stays float).
        const bool quantized = is_fp8(which);
        Impl::QuantizedRows q;
        if (quantized) {
            q = impl_->quantize(in, n, k, starts);
        }
        for (std::size_t e = 0; e < experts.size(); ++e) {
            const std::int64_t r0 = starts[e], rows = starts[e + 1] - starts[e];
            if (rows == 0) {
                continue;
            }
            const model::Tensor& w = *(experts[e].*which);
            DS_ASSERT(w.rows() == n_out && w.storage == (experts[0].*which)->storage,
                      "experts of different shapes or formats");
            if (quantized) {
                impl_->fp8_product(q, r0, rows, w, result + r0 * n_out);
            } else {
                impl_->linear(in + r0 * k, rows, k, w, result + r0 * n_out);
            }
        }
    };
    products(ptr(xe), hidden, &model::ExpertWeights::gate, ptr(gate), inter);
    products(ptr(xe), hidden, &model::ExpertWeights::up, ptr(up), inter);
    launch_silu_mul(ptr(gate), ptr(up), ptr(gate), n * inter, impl_->stream);
    products(ptr(gate), inter, &model::ExpertWeights::down, ptr(ye), hidden);
    launch_moe_combine(ptr(ye), impl_->upload(std::span<const std::int32_t>(order_pos)),
                       impl_->upload(std::span<const float>(order_weight)), narrow(t), top_k,
                       narrow(hidden), ptr(out), impl_->stream);
}

// Steps route and run their experts without the host: the router's choice stays on the device,
// and the products read the active experts' list there. Decode-sized steps take the grouped
// GEMV, which reads each active expert's weights once for all its tokens; larger ones with
// block-FP8 experts the tiled GEMM. The host path remains for what neither takes (float32
// experts past the layout's bound, shapes off the kernels' blocks).
void CudaOps::moe(const Tensor& x, const Tensor& router_logits, std::span<const float> bias,
                  const model::ModelConfig& c, std::span<const model::ExpertWeights> experts,
                  const model::ExpertWeights* shared, Tensor& out) {
    auto timed = impl_->op("moe");
    const std::int64_t t = x.rows(), hidden = x.cols();
    const int top_k = c.num_experts_per_tok;
    bool device_path =
        t > 0 && static_cast<int>(experts.size()) == c.n_routed_experts && !experts.empty();
    const WeightFormat format = device_path ? format_of(*experts[0].gate) : WeightFormat::f32;
    const std::int64_t inter = device_path ? experts[0].gate->rows() : 0;
    auto fits = [&](const model::ExpertWeights& e) {
        return format_of(*e.gate) == format && format_of(*e.up) == format &&
               format_of(*e.down) == format && e.gate->rows() == inter && e.up->rows() == inter &&
               e.down->cols() == inter;
    };
    if (device_path) {
        for (const auto& e : experts) {
            device_path = device_path && fits(e);
        }
        device_path = device_path && gemv_supports(format, narrow(hidden)) &&
                      gemv_supports(format, narrow(inter)) && inter % 4 == 0;
    }
    // The shared expert joins the routed ones' launches when it has their shape (DeepSeek-V3.2:
    // one shared expert as wide as a routed one), as expert number n_routed_experts.
    const bool shared_joins = device_path && shared != nullptr && fits(*shared);
    const int width = top_k + (shared_joins ? 1 : 0);
    const int num_experts = c.n_routed_experts + (shared_joins ? 1 : 0);
    const std::int64_t n = t * width;
    // Many rows (prefill) go to the tiled FP8 GEMM, which reads an expert's weights once for
    // 64 rows and lays out any number of them; fewer to the grouped GEMV, up to its layout's
    // bound (topk.h). What neither takes runs on the host path.
    const bool tiled =
        device_path && format == WeightFormat::fp8_block && n >= impl_->moe_gemm_rows &&
        moe_gemm_supports(narrow(inter), narrow(hidden)) &&
        moe_gemm_supports(narrow(hidden), narrow(inter)) && num_experts <= kMaxLayoutExperts &&
        moe_tiles_bound(n, num_experts) <= kMaxMoeGemmTiles;
    device_path = device_path && (tiled || moe_layout_fits(t, width, num_experts));
    if (!device_path) {
        Ops::moe(x, router_logits, bias, c, experts, shared, out);
        return;
    }
    DS_ASSERT(static_cast<int>(bias.size()) == c.n_routed_experts &&
                  router_logits.cols() == c.n_routed_experts && router_logits.rows() == t &&
                  out.rows() == t && out.cols() == hidden,
              bias.size(), " ", router_logits.cols());
    impl_->bind();
    const model::ExpertWeights* joined = shared_joins ? shared : nullptr;
    if (tiled) {
        impl_->moe_tiled(x, router_logits, bias, c, experts, joined, out);
    } else {
        impl_->moe_grouped(x, router_logits, bias, c, format, experts, joined, out);
    }
    if (shared != nullptr && !shared_joins) {
        add_swiglu_mlp(x, *shared, out);
    }
}

}  // namespace dsserve::backend::cuda
