// Kernel micro-benchmarks for the CUDA backend, printed as a markdown table. Each case times one
// launch with CUDA events, the median of kReps runs after kWarmup, with L2 flushed before every
// run so that the figures are those of a cold cache, as a decode step sees a layer's KV cache.
// The flush reads a large buffer rather than writing it: a written flush leaves L2 full of dirty
// lines whose write-back the timed kernel would pay (about 12 us on the H200), which no decode
// step pays.
// Bandwidth is the bytes a kernel has to read at least, over the time, next to the H200's
// measured copy bandwidth. A family of cases is one function returning rows; add more (FP8 GEMMs)
// the same way and call them from main.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/mla_absorb.h"
#include "backend/cuda/mla_decode.h"
#include "backend/cuda/sample.h"
#include "backend/cuda/topk.h"

namespace dsserve::backend::cuda {
namespace {

constexpr double kCopyGBs = 4280.0;  // H200, device-to-device copy, measured
constexpr int kWarmup = 3, kReps = 25;
constexpr std::size_t kFlushBytes = std::size_t{512} << 20;  // > the 50 MB L2

class DeviceBuffer {
public:
    explicit DeviceBuffer(std::size_t bytes) : bytes_(bytes) {
        check_cuda(cudaMalloc(&ptr_, std::max<std::size_t>(bytes, 1)), "cudaMalloc");
    }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    ~DeviceBuffer() { cudaFree(ptr_); }

    template <typename T>
    T* as() const {
        return static_cast<T*>(ptr_);
    }
    template <typename T>
    static DeviceBuffer from(const std::vector<T>& host) {
        DeviceBuffer b(host.size() * sizeof(T));
        check_cuda(cudaMemcpy(b.ptr_, host.data(), b.bytes_, cudaMemcpyHostToDevice),
                   "cudaMemcpy to device");
        return b;
    }
    DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = nullptr; }
    DeviceBuffer& operator=(DeviceBuffer&&) = delete;

    template <typename T>
    std::vector<T> to_host() const {
        std::vector<T> host(bytes_ / sizeof(T));
        check_cuda(cudaMemcpy(host.data(), ptr_, host.size() * sizeof(T), cudaMemcpyDeviceToHost),
                   "cudaMemcpy to host");
        return host;
    }

private:
    void* ptr_ = nullptr;
    std::size_t bytes_;
};

// Median time of `launch` in microseconds.
class Timer {
public:
    explicit Timer(cudaStream_t stream)
        : stream_(stream),
          flush_(kFlushBytes),
          flush_rows_(kFlushRows * sizeof(std::int64_t)),
          flush_out_(kFlushRows * sizeof(std::int32_t)) {
        check_cuda(cudaEventCreate(&start_), "cudaEventCreate");
        check_cuda(cudaEventCreate(&stop_), "cudaEventCreate");
        check_cuda(cudaMemsetAsync(flush_.as<void>(), 0, kFlushBytes, stream_), "flush buffer");
        std::vector<std::int64_t> rows(kFlushRows);
        std::iota(rows.begin(), rows.end(), 0);
        check_cuda(cudaMemcpy(flush_rows_.as<void>(), rows.data(), rows.size() * sizeof rows[0],
                              cudaMemcpyHostToDevice),
                   "cudaMemcpy flush rows");
    }
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;
    ~Timer() {
        cudaEventDestroy(start_);
        cudaEventDestroy(stop_);
    }

    double median_us(const std::function<void()>& launch) {
        return chain_us(1, [&](int) { launch(); });
    }

    // Per launch, for `n` launches back to back (launch(i), i < n), as a decode step runs its
    // kernels: launch latency overlaps the previous kernel's tail.
    double chain_us(int n, const std::function<void(int)>& launch) {
        std::vector<double> us;
        for (int rep = 0; rep < kWarmup + kReps; ++rep) {
            flush();
            check_cuda(cudaEventRecord(start_, stream_), "cudaEventRecord");
            for (int i = 0; i < n; ++i) {
                launch(i);
            }
            check_cuda(cudaEventRecord(stop_, stream_), "cudaEventRecord");
            check_cuda(cudaEventSynchronize(stop_), "cudaEventSynchronize");
            float ms = 0.0f;
            check_cuda(cudaEventElapsedTime(&ms, start_, stop_), "cudaEventElapsedTime");
            if (rep >= kWarmup) {
                us.push_back(1000.0 * ms / n);
            }
        }
        std::nth_element(us.begin(), us.begin() + kReps / 2, us.end());
        return us[kReps / 2];
    }

    // Reads the flush buffer (a row argmax over it): L2 ends up holding its clean lines.
    void flush() {
        launch_argmax_rows(flush_.as<float>(), kFlushCols, flush_rows_.as<std::int64_t>(),
                           kFlushRows, kFlushCols, flush_out_.as<std::int32_t>(), nullptr, nullptr,
                           stream_);
    }
    // The time of a plain streaming read of `bytes` (the same argmax; at most kFlushBytes), for
    // comparison.
    double read_us(std::size_t bytes) {
        const int rows =
            static_cast<int>(std::min<std::size_t>(bytes / (kFlushCols * 4), kFlushRows));
        return median_us([&] {
            launch_argmax_rows(flush_.as<float>(), kFlushCols, flush_rows_.as<std::int64_t>(), rows,
                               kFlushCols, flush_out_.as<std::int32_t>(), nullptr, nullptr,
                               stream_);
        });
    }

    cudaStream_t stream() const { return stream_; }

private:
    static constexpr int kFlushCols = 1 << 15;
    static constexpr int kFlushRows = static_cast<int>(kFlushBytes / (kFlushCols * 4));
    cudaStream_t stream_;
    DeviceBuffer flush_, flush_rows_, flush_out_;
    cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

struct Row {
    std::string kernel, shape;
    double us, bytes;
    std::string note;  // e.g. the agreement with a reference kernel
};

void print_table(const std::vector<Row>& rows) {
    std::printf(
        "| kernel | shape | time (us) | bytes read (MB) | GB/s | %% of %.0f GB/s | note |\n",
        kCopyGBs);
    std::printf("|---|---|---:|---:|---:|---:|---|\n");
    for (const Row& r : rows) {
        const double gbs = r.bytes / (r.us * 1e3);
        std::printf("| %s | %s | %.1f | %.2f | %.0f | %.1f | %s |\n", r.kernel.c_str(),
                    r.shape.c_str(), r.us, r.bytes / 1e6, gbs, 100.0 * gbs / kCopyGBs,
                    r.note.c_str());
    }
}

// Uniform in [-1, 1), cheap enough for a gigabyte of cache.
std::vector<float> random_floats(std::size_t n, std::uint64_t seed) {
    std::vector<float> v(n);
    std::uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (float& f : v) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        f = static_cast<float>(x >> 40) * (2.0f / 16777216.0f) - 1.0f;
    }
    return v;
}

// Absorbed MLA at decode with DeepSeek-V3.2's shape: launch_mla_attend (one block per token and
// head) against launch_mla_decode (head groups, split keys) over a float32 cache, and
// launch_mla_decode over the same cache in bfloat16 (tensor cores). Selected keys are random
// distinct slots among the first 200k rows (the sparse indexer's top-k); dense keys are each
// token's own contiguous run. Bytes: each token's key rows, keys x (512 + 64) values, read once.
std::vector<Row> bench_mla_decode(Timer& timer) {
    constexpr int kHeads = 128, kLora = 512, kRope = 64, kNope = 128, kQk = kNope + kRope;
    constexpr int kMaxTokens = 64, kSelectRows = 200000, kDenseKeys = 8192;
    constexpr std::int64_t kCacheRows = std::int64_t{kMaxTokens} * kDenseKeys;
    const float scale = 1.0f / std::sqrt(float{kQk});

    DeviceBuffer latent(static_cast<std::size_t>(kCacheRows) * kLora * sizeof(float));
    DeviceBuffer k_rope(static_cast<std::size_t>(kCacheRows) * kRope * sizeof(float));
    {
        // One random block, tiled over the cache: the values only need to be plausible.
        const std::vector<float> block = random_floats(std::size_t{1} << 24, 1);
        const std::size_t block_bytes = block.size() * sizeof(float);
        for (const DeviceBuffer* buf : {&latent, &k_rope}) {
            const std::size_t total =
                static_cast<std::size_t>(kCacheRows) * (buf == &latent ? kLora : kRope) * 4;
            for (std::size_t at = 0; at < total; at += block_bytes) {
                check_cuda(cudaMemcpy(buf->as<char>() + at, block.data(),
                                      std::min(block_bytes, total - at), cudaMemcpyHostToDevice),
                           "cudaMemcpy cache");
            }
        }
    }
    DeviceBuffer latent16(static_cast<std::size_t>(kCacheRows) * kLora * 2);
    DeviceBuffer k_rope16(static_cast<std::size_t>(kCacheRows) * kRope * 2);
    launch_to_bf16(latent.as<float>(), kCacheRows * kLora, latent16.as<void>(), nullptr);
    launch_to_bf16(k_rope.as<float>(), kCacheRows * kRope, k_rope16.as<void>(), nullptr);
    check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize (bf16 cache)");
    const std::size_t q_rows = std::size_t{kMaxTokens} * kHeads;
    DeviceBuffer q_lat = DeviceBuffer::from(random_floats(q_rows * kLora, 2));
    DeviceBuffer q = DeviceBuffer::from(random_floats(q_rows * kQk, 3));
    DeviceBuffer out_attend(q_rows * kLora * sizeof(float));
    DeviceBuffer out_decode(q_rows * kLora * sizeof(float));
    DeviceBuffer out_bf16(q_rows * kLora * sizeof(float));

    std::mt19937 rng(5);
    std::vector<Row> rows;
    for (int keys_per_token : {1024, 2048, kDenseKeys}) {
        const bool dense = keys_per_token == kDenseKeys;
        for (int tokens : {1, 16, kMaxTokens}) {
            std::vector<std::int32_t> keys, offset, count;
            std::vector<std::int32_t> pool(kSelectRows);
            std::iota(pool.begin(), pool.end(), 0);
            for (int t = 0; t < tokens; ++t) {
                offset.push_back(static_cast<std::int32_t>(keys.size()));
                count.push_back(keys_per_token);
                for (int j = 0; j < keys_per_token; ++j) {
                    if (dense) {
                        keys.push_back(t * kDenseKeys + j);
                    } else {
                        // Partial Fisher-Yates: distinct slots per token.
                        std::uniform_int_distribution<int> pick(j, kSelectRows - 1);
                        std::swap(pool[static_cast<std::size_t>(j)],
                                  pool[static_cast<std::size_t>(pick(rng))]);
                        keys.push_back(pool[static_cast<std::size_t>(j)]);
                    }
                }
            }
            DeviceBuffer d_keys = DeviceBuffer::from(keys), d_offset = DeviceBuffer::from(offset),
                         d_count = DeviceBuffer::from(count);
            const MlaShape shape{tokens, kHeads, kLora, kRope, kNope, kQk, scale};
            DeviceBuffer workspace(
                std::max(mla_decode_workspace_bytes(shape, keys_per_token, CacheFormat::f32),
                         mla_decode_workspace_bytes(shape, keys_per_token, CacheFormat::bf16)));
            const double bytes = double{1} * tokens * keys_per_token * (kLora + kRope) * 4;
            const std::string what = std::to_string(tokens) + " tok x " +
                                     std::to_string(keys_per_token) +
                                     (dense ? " dense keys" : " selected keys");
            const double attend_us = timer.median_us([&] {
                launch_mla_attend(q_lat.as<float>(), q.as<float>(), CacheFormat::f32,
                                  latent.as<float>(), k_rope.as<float>(), d_keys.as<std::int32_t>(),
                                  d_offset.as<std::int32_t>(), d_count.as<std::int32_t>(), shape,
                                  out_attend.as<float>(), timer.stream());
            });
            const double decode_us = timer.median_us([&] {
                launch_mla_decode(q_lat.as<float>(), q.as<float>(), CacheFormat::f32,
                                  latent.as<float>(), k_rope.as<float>(), d_keys.as<std::int32_t>(),
                                  d_offset.as<std::int32_t>(), d_count.as<std::int32_t>(), shape,
                                  keys_per_token, workspace.as<void>(), out_decode.as<float>(),
                                  timer.stream());
            });
            const double bf16_us = timer.median_us([&] {
                launch_mla_decode(q_lat.as<float>(), q.as<float>(), CacheFormat::bf16,
                                  latent16.as<void>(), k_rope16.as<void>(),
                                  d_keys.as<std::int32_t>(), d_offset.as<std::int32_t>(),
                                  d_count.as<std::int32_t>(), shape, keys_per_token,
                                  workspace.as<void>(), out_bf16.as<float>(), timer.stream());
            });
            // They must agree, or the timing means nothing: max |a - b| / max(1, max |a|).
            const std::size_t n = static_cast<std::size_t>(tokens) * kHeads * kLora;
            const std::vector<float> a = out_attend.to_host<float>();
            auto rel_diff = [&](const std::vector<float>& b) {
                double diff = 0.0, mag = 1.0;
                for (std::size_t i = 0; i < n; ++i) {
                    diff = std::isfinite(b[i]) ? std::max(diff, double{std::abs(a[i] - b[i])})
                                               : INFINITY;
                    mag = std::max(mag, double{std::abs(a[i])});
                }
                return diff / mag;
            };
            char note[96], note16[96];
            std::snprintf(note, sizeof note, "%.1fx faster; rel diff %.1e", attend_us / decode_us,
                          rel_diff(out_decode.to_host<float>()));
            std::snprintf(note16, sizeof note16, "%.1fx the f32 decode; rel diff %.1e",
                          decode_us / bf16_us, rel_diff(out_bf16.to_host<float>()));
            rows.push_back({"mla_attend", what, attend_us, bytes, ""});
            rows.push_back({"mla_decode", what, decode_us, bytes, note});
            rows.push_back({"mla_decode_bf16", what, bf16_us, bytes / 2, note16});
        }
    }
    return rows;
}

// A weight of n rows and k columns in `format` (contents irrelevant to the timing: random scales,
// a constant byte pattern), and a GEMV segment writing into y.
struct BenchWeight {
    DeviceBuffer w, scale;
    GemvSegment seg(float* y, int ldy) const {
        GemvSegment s;
        s.w = w.as<void>();
        s.scale = scale.as<float>();
        s.scale_ld = static_cast<int>(weight_scale_stride(k));
        s.n = n;
        s.y = y;
        s.ldy = ldy;
        return s;
    }
    int n, k;
};

BenchWeight bench_weight(WeightFormat format, int n, int k, cudaStream_t stream) {
    const auto elem = static_cast<std::size_t>(weight_bytes(format));
    const std::size_t scales = static_cast<std::size_t>((n + 127) / 128) *
                               static_cast<std::size_t>(weight_scale_stride(k));
    // Rows padded to 128, as CudaOps stores block-FP8 weights.
    const std::size_t bytes = static_cast<std::size_t>((n + 127) / 128 * 128) * k * elem;
    BenchWeight b{DeviceBuffer(bytes), DeviceBuffer(scales * 4), n, k};
    check_cuda(cudaMemsetAsync(b.w.as<void>(), 0x3a, bytes, stream), "cudaMemsetAsync");
    launch_random_normal(b.scale.as<float>(), static_cast<std::int64_t>(scales), 7, 1.0f, 0.01f,
                         stream);
    return b;
}

// Scratch for the tensor-core FP8 GEMV (gemv.h), sized for the largest bench case.
struct Fp8Scratch {
    explicit Fp8Scratch(cudaStream_t stream)
        : x8(static_cast<std::size_t>(kMaxRows) * kMaxK * 2),
          partials(static_cast<std::size_t>(kWarps) * 512),
          counters(kCounters * 4) {
        check_cuda(cudaMemsetAsync(counters.as<void>(), 0, kCounters * 4, stream),
                   "cudaMemsetAsync");
    }
    GemvFp8Workspace workspace(int rows, int k) const {
        GemvFp8Workspace w;
        w.x8 = x8.as<void>();
        w.xs =
            reinterpret_cast<float*>(x8.as<unsigned char>() + static_cast<std::size_t>(rows) * k);
        w.partials = partials.as<float>();
        w.partial_warps = kWarps;
        w.counters = counters.as<std::int32_t>();
        w.counter_words = kCounters;
        return w;
    }
    static constexpr int kMaxRows = 512, kMaxK = 18432, kWarps = 132 * 24;
    static constexpr std::size_t kCounters = 1u << 18;
    DeviceBuffer x8, partials, counters;
};

// The decode-step products of DeepSeek-V3.2 through the GEMV kernels: bytes are the weights'.
// Block-FP8 weights both ways: the tensor-core GEMV with e4m3 activations (what CudaOps runs)
// and the float32-activation GEMV.
// fp8_only: the tensor-core GEMV alone, at 1 and 16 rows (a quick check while tuning it).
std::vector<Row> bench_gemv(Timer& timer, bool fp8_only) {
    const cudaStream_t stream = timer.stream();
    std::vector<Row> rows;
    struct Case {
        const char* name;
        WeightFormat format;
        std::vector<int> n;  // weights sharing the input
        int k;
    };
    const std::vector<Case> cases = {
        {"q_a + kv_a + indexer wk (fp8)", WeightFormat::fp8_block, {1536, 576, 128}, 7168},
        {"q_b (fp8)", WeightFormat::fp8_block, {24576}, 1536},
        {"o_proj (fp8)", WeightFormat::fp8_block, {7168}, 16384},
        {"dense gate + up (fp8)", WeightFormat::fp8_block, {18432, 18432}, 7168},
        {"dense down (fp8)", WeightFormat::fp8_block, {7168}, 18432},
        {"lm_head (bf16)", WeightFormat::bf16, {129280}, 7168},
        {"router (f32)", WeightFormat::f32, {256}, 7168},
    };
    DeviceBuffer x(static_cast<std::size_t>(16) * 18432 * 4),
        y(static_cast<std::size_t>(16) * 2 * 129280 * 4);
    const Fp8Scratch scratch(stream);
    // The weights of a case (in as many copies as asked), each segment writing its own columns.
    struct Product {
        std::vector<BenchWeight> weights;
        std::vector<GemvSegment> segs;
    };
    auto product = [&](const Case& c) {
        int total = 0;
        for (int n : c.n) {
            total += n;
        }
        Product p;
        int col = 0;
        for (int n : c.n) {
            p.weights.push_back(bench_weight(c.format, n, c.k, stream));
            p.segs.push_back(p.weights.back().seg(y.as<float>() + col, total));
            col += n;
        }
        return p;
    };
    for (int m : {1, 2, 8, 16}) {
        for (const Case& c : cases) {
            if (fp8_only && (c.format != WeightFormat::fp8_block || m == 2 || m == 8)) {
                continue;
            }
            const Product prod = product(c);
            const std::vector<GemvSegment>& segs = prod.segs;
            double bytes = 0.0;
            for (int n : c.n) {
                bytes += static_cast<double>(n) * c.k * weight_bytes(c.format);
            }
            const GemvInput in{x.as<float>(), c.k, c.k, false};
            const double us = fp8_only ? 0.0 : timer.median_us([&] {
                launch_gemv(c.format, in, segs.data(), static_cast<int>(segs.size()), GemvPlain{m},
                            stream);
            });
            if (c.format == WeightFormat::fp8_block) {
                const double mma_us = timer.median_us([&] {
                    launch_gemv_fp8(in, m, segs.data(), static_cast<int>(segs.size()), m, nullptr,
                                    (m + 7) / 8, scratch.workspace(m, c.k), stream);
                });
                rows.push_back(
                    {"gemv fp8 (tensor cores)", str_cat(c.name, ", ", m, " row(s)"), mma_us, bytes,
                     fp8_only ? "" : str_cat(us / mma_us, "x the float32-activation GEMV")});
            }
            if (!fp8_only) {
                rows.push_back({"gemv", str_cat(c.name, ", ", m, " row(s)"), us, bytes, ""});
            }
            if (m == 1 && bytes <= static_cast<double>(kFlushBytes)) {
                rows.push_back({"streaming read (argmax)", str_cat(bytes / 1e6, " MB"),
                                timer.read_us(static_cast<std::size_t>(bytes)), bytes, ""});
            }
            if (m == 1 && c.format == WeightFormat::fp8_block) {
                // Back to back over copies of the weight that together overflow L2, as a step
                // runs its products.
                const int copies = static_cast<int>(std::clamp(std::ceil(256e6 / bytes), 1.0, 8.0));
                std::vector<Product> more;
                for (int i = 0; i < copies; ++i) {
                    more.push_back(product(c));
                }
                constexpr int kChain = 8;
                const double chain = timer.chain_us(kChain, [&](int i) {
                    const std::vector<GemvSegment>& s =
                        more[static_cast<std::size_t>(i % copies)].segs;
                    launch_gemv_fp8(in, m, s.data(), static_cast<int>(s.size()), m, nullptr, 1,
                                    scratch.workspace(m, c.k), stream);
                });
                rows.push_back({"gemv fp8 (tensor cores), 8 back to back",
                                str_cat(c.name, ", ", m, " row(s), ", copies, " copies"), chain,
                                bytes, ""});
            }
        }
    }
    return rows;
}

// The routed experts of a decode step in one grouped launch each for gate+up and down: tokens
// x 8 experts among 256 (random, distinct per token), bytes = the distinct experts' weights.
std::vector<Row> bench_moe(Timer& timer) {
    const cudaStream_t stream = timer.stream();
    constexpr int kExperts = 256, kTopK = 8, kHidden = 7168, kInter = 2048;
    std::vector<BenchWeight> gate, up, down;
    std::vector<const void*> gu_table, gu_scales, d_table, d_scales;
    for (int e = 0; e < kExperts; ++e) {
        gate.push_back(bench_weight(WeightFormat::fp8_block, kInter, kHidden, stream));
        up.push_back(bench_weight(WeightFormat::fp8_block, kInter, kHidden, stream));
        down.push_back(bench_weight(WeightFormat::fp8_block, kHidden, kInter, stream));
        gu_table.push_back(gate.back().w.as<void>());
        gu_table.push_back(up.back().w.as<void>());
        gu_scales.push_back(gate.back().scale.as<void>());
        gu_scales.push_back(up.back().scale.as<void>());
        d_table.push_back(down.back().w.as<void>());
        d_scales.push_back(down.back().scale.as<void>());
    }
    const DeviceBuffer gut = DeviceBuffer::from(gu_table), gus = DeviceBuffer::from(gu_scales),
                       dt = DeviceBuffer::from(d_table), ds = DeviceBuffer::from(d_scales);
    std::vector<Row> rows;
    std::mt19937 rng(3);
    for (int tokens : {1, 16, 64}) {
        std::vector<std::int32_t> chosen;
        std::vector<int> all(kExperts);
        std::iota(all.begin(), all.end(), 0);
        std::vector<char> used(kExperts, 0);
        for (int t = 0; t < tokens; ++t) {
            std::shuffle(all.begin(), all.end(), rng);
            for (int k = 0; k < kTopK; ++k) {
                chosen.push_back(all[static_cast<std::size_t>(k)]);
                used[static_cast<std::size_t>(all[static_cast<std::size_t>(k)])] = 1;
            }
        }
        const int distinct = static_cast<int>(std::count(used.begin(), used.end(), 1));
        const int n = tokens * kTopK, slots = std::min(n, kExperts);
        const DeviceBuffer ids = DeviceBuffer::from(chosen),
                           weights = DeviceBuffer::from(std::vector<float>(chosen.size(), 0.1f));
        DeviceBuffer layout(static_cast<std::size_t>(4 * n + 2 * slots + 2) * 4);
        auto* base = layout.as<std::int32_t>();
        std::int32_t *row_token = base, *combine_pos = base + n, *count = base + 3 * n,
                     *slot_expert = count + 1, *slot_start = slot_expert + slots;
        auto* combine_weight = reinterpret_cast<float*>(base + 2 * n);
        launch_moe_group(
            ids.as<std::int32_t>(), weights.as<float>(), tokens, kTopK, kExperts,
            MoeLayout{count, slot_expert, slot_start, row_token, combine_pos, combine_weight},
            stream);
        DeviceBuffer x(static_cast<std::size_t>(tokens) * kHidden * 4),
            gu(static_cast<std::size_t>(n) * 2 * kInter * 4),
            ye(static_cast<std::size_t>(n) * kHidden * 4),
            act(static_cast<std::size_t>(n) * kInter * 4);
        GemvGrouped g;
        g.count = count;
        g.expert = slot_expert;
        g.start = slot_start;
        g.x_row = row_token;
        g.max_slots = slots;
        g.rows_per_slot = std::min(8, (n + slots - 1) / slots);
        GemvSegment gseg[2], dseg;
        for (int i = 0; i < 2; ++i) {
            gseg[i].n = kInter;
            gseg[i].y = gu.as<float>() + i * kInter;
            gseg[i].ldy = 2 * kInter;
            gseg[i].scale_ld = static_cast<int>(weight_scale_stride(kHidden));
        }
        dseg.n = kHidden;
        dseg.y = ye.as<float>();
        dseg.ldy = kHidden;
        dseg.scale_ld = static_cast<int>(weight_scale_stride(kInter));
        const double us = timer.median_us([&] {
            GemvGrouped a = g;
            a.table = gut.as<const void* const>();
            a.scales = gus.as<const float* const>();
            launch_gemv_grouped(WeightFormat::fp8_block,
                                GemvInput{x.as<float>(), kHidden, kHidden, false}, gseg, 2, a,
                                stream);
            launch_silu_mul_rows(gu.as<float>(), kInter, n, act.as<float>(), stream);
            a.x_row = nullptr;
            a.table = dt.as<const void* const>();
            a.scales = ds.as<const float* const>();
            launch_gemv_grouped(WeightFormat::fp8_block,
                                GemvInput{act.as<float>(), kInter, kInter, false}, &dseg, 1, a,
                                stream);
        });
        const Fp8Scratch scratch(stream);
        const double mma_us = timer.median_us([&] {
            GemvGrouped a = g;
            a.table = gut.as<const void* const>();
            a.scales = gus.as<const float* const>();
            launch_gemv_fp8(GemvInput{x.as<float>(), kHidden, kHidden, false}, tokens, gseg, 2, 0,
                            &a, slots + n / 8, scratch.workspace(tokens, kHidden), stream);
            a.x_row = nullptr;
            a.table = dt.as<const void* const>();
            a.scales = ds.as<const float* const>();
            launch_gemv_fp8(GemvInput{gu.as<float>(), 2 * kInter, kInter, true}, n, &dseg, 1, 0, &a,
                            slots + n / 8, scratch.workspace(n, kInter), stream);
        });
        const double bytes = static_cast<double>(distinct) * 3.0 * kHidden * kInter;
        const std::string what = str_cat(tokens, " token(s) x 8 experts: ", distinct, " distinct");
        rows.push_back({"grouped fp8 (tensor cores)", what, mma_us, bytes,
                        str_cat(us / mma_us, "x the float32-activation GEMV")});
        rows.push_back({"gemv grouped (fp8 experts)", what, us, bytes, ""});
    }
    return rows;
}

// MLA's kv_b_proj products at decode with DeepSeek-V3.2's shape (128 heads, nope 128, v 128,
// lora 512): the absorb kernels on the weight in block FP8, BF16 and float32, and the float32
// cuBLAS pair (two strided-batched SGEMMs) they replace, on the dequantized FP8 weight so that
// the results agree. Bytes: the weight as stored (with FP8 scales) plus the activations read.
std::vector<Row> bench_absorb(Timer& timer) {
    const cudaStream_t stream = timer.stream();
    constexpr int kHeads = 128, kNope = 128, kRope = 64, kV = 128, kLora = 512, kMaxTokens = 64;
    constexpr int kQk = kNope + kRope, kRows = kHeads * (kNope + kV);
    const auto values = static_cast<std::size_t>(kRows) * kLora;
    const std::size_t scales = static_cast<std::size_t>(kRows / 128) *
                               static_cast<std::size_t>(weight_scale_stride(kLora));
    std::vector<float> host_w = random_floats(values, 9);
    for (float& x : host_w) {
        x *= 0.05f;
    }
    const DeviceBuffer w32 = DeviceBuffer::from(host_w);
    DeviceBuffer fp8(values), fp8_scales(scales * 4), deq(values * 4), bf16(values * 2);
    launch_quantize_weight(w32.as<float>(), kRows, kLora, fp8.as<void>(), fp8_scales.as<float>(),
                           stream);
    launch_dequantize_weight(fp8.as<void>(), fp8_scales.as<float>(), kRows, kLora, deq.as<float>(),
                             stream);
    launch_to_bf16(w32.as<float>(), static_cast<std::int64_t>(values), bf16.as<void>(), stream);
    const auto ld = static_cast<int>(weight_scale_stride(kLora));
    const AbsorbWeight w_fp8{WeightFormat::fp8_block, fp8.as<void>(), fp8_scales.as<float>(), ld};
    const AbsorbWeight w_bf16{WeightFormat::bf16, bf16.as<void>(), nullptr, 0};
    const AbsorbWeight w_f32{WeightFormat::f32, w32.as<void>(), nullptr, 0};

    const std::size_t lat = static_cast<std::size_t>(kMaxTokens) * kHeads * kLora;
    const DeviceBuffer q = DeviceBuffer::from(random_floats(lat / kLora * kQk, 10));
    const DeviceBuffer o_lat = DeviceBuffer::from(random_floats(lat, 11));
    DeviceBuffer q_lat(lat * 4), out(lat / kLora * kV * 4), q_lat_ref(lat * 4),
        out_ref(lat / kLora * kV * 4);

    cublasHandle_t blas = nullptr;
    if (cublasCreate(&blas) != CUBLAS_STATUS_SUCCESS ||
        cublasSetStream(blas, stream) != CUBLAS_STATUS_SUCCESS ||
        cublasSetMathMode(blas, CUBLAS_PEDANTIC_MATH) != CUBLAS_STATUS_SUCCESS) {
        std::fprintf(stderr, "cuBLAS set-up failed\n");
        std::exit(1);
    }
    const float one = 1.0f, zero = 0.0f;
    auto cublas_pair = [&](int tokens) {
        // As CudaOps::mla_attention runs them for float32 weights.
        const cublasStatus_t a = cublasSgemmStridedBatched(
            blas, CUBLAS_OP_N, CUBLAS_OP_N, kLora, tokens, kNope, &one, deq.as<float>(), kLora,
            static_cast<long long>(kNope + kV) * kLora, q.as<float>(), kHeads * kQk, kQk, &zero,
            q_lat_ref.as<float>(), kHeads * kLora, kLora, kHeads);
        const cublasStatus_t b = cublasSgemmStridedBatched(
            blas, CUBLAS_OP_T, CUBLAS_OP_N, kV, tokens, kLora, &one,
            deq.as<float>() + static_cast<std::ptrdiff_t>(kNope) * kLora, kLora,
            static_cast<long long>(kNope + kV) * kLora, o_lat.as<float>(), kHeads * kLora, kLora,
            &zero, out_ref.as<float>(), kHeads * kV, kV, kHeads);
        if (a != CUBLAS_STATUS_SUCCESS || b != CUBLAS_STATUS_SUCCESS) {
            std::fprintf(stderr, "cuBLAS failed\n");
            std::exit(1);
        }
    };
    // max |a - b| / max(1, max |b|) over the first n values.
    auto rel = [](const DeviceBuffer& a, const DeviceBuffer& b, std::size_t n) {
        const std::vector<float> x = a.to_host<float>(), y = b.to_host<float>();
        double diff = 0.0, mag = 1.0;
        for (std::size_t i = 0; i < n; ++i) {
            diff = std::isfinite(x[i]) ? std::max(diff, double{std::abs(x[i] - y[i])}) : INFINITY;
            mag = std::max(mag, double{std::abs(y[i])});
        }
        return diff / mag;
    };

    std::vector<Row> rows;
    for (int tokens : {1, 16, kMaxTokens}) {
        const AbsorbShape shape{tokens, kHeads, kNope, kRope, kV, kLora};
        const double in_q = 4.0 * tokens * kHeads * kNope, in_out = 4.0 * tokens * kHeads * kLora;
        const double half = static_cast<double>(values) / 2;  // W_UK or W_UV values
        const double fp8_scale_bytes = static_cast<double>(scales) * 4 / 2;
        const std::string what = std::to_string(tokens) + " token(s)";
        const double cublas_us = timer.median_us([&] { cublas_pair(tokens); });
        const double q_us = timer.median_us(
            [&] { launch_absorb_q(w_fp8, shape, q.as<float>(), q_lat.as<float>(), stream); });
        const double out_us = timer.median_us(
            [&] { launch_absorb_out(w_fp8, shape, o_lat.as<float>(), out.as<float>(), stream); });
        const double pair_us = timer.median_us([&] {
            launch_absorb_q(w_fp8, shape, q.as<float>(), q_lat.as<float>(), stream);
            launch_absorb_out(w_fp8, shape, o_lat.as<float>(), out.as<float>(), stream);
        });
        // The FP8 pair and cuBLAS on the dequantized weight must agree, or the timing means
        // nothing.
        cublas_pair(tokens);
        check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
        const std::size_t n_lat = static_cast<std::size_t>(tokens) * kHeads * kLora;
        const double diff =
            std::max(rel(q_lat, q_lat_ref, n_lat), rel(out, out_ref, n_lat / kLora * kV));
        auto pair_of = [&](const AbsorbWeight& w) {
            return timer.median_us([&] {
                launch_absorb_q(w, shape, q.as<float>(), q_lat.as<float>(), stream);
                launch_absorb_out(w, shape, o_lat.as<float>(), out.as<float>(), stream);
            });
        };
        const double bf16_us = pair_of(w_bf16), f32_us = pair_of(w_f32);
        const double fp8_bytes = 2 * (half + fp8_scale_bytes) + in_q + in_out;
        char note[96];
        std::snprintf(note, sizeof note, "%.1fx faster than cuBLAS f32; rel diff %.1e",
                      cublas_us / pair_us, diff);
        rows.push_back({"absorb_q (fp8)", what, q_us, half + fp8_scale_bytes + in_q, ""});
        rows.push_back({"absorb_out (fp8)", what, out_us, half + fp8_scale_bytes + in_out, ""});
        rows.push_back({"absorb pair (fp8)", what, pair_us, fp8_bytes, note});
        std::snprintf(note, sizeof note, "%.1fx faster than cuBLAS f32", cublas_us / bf16_us);
        rows.push_back({"absorb pair (bf16)", what, bf16_us, 2 * half * 2 + in_q + in_out, note});
        std::snprintf(note, sizeof note, "%.1fx faster than cuBLAS f32", cublas_us / f32_us);
        rows.push_back({"absorb pair (f32)", what, f32_us, 2 * half * 4 + in_q + in_out, note});
        rows.push_back(
            {"cuBLAS SGEMM pair (f32)", what, cublas_us, 2 * half * 4 + in_q + in_out, ""});
    }
    cublasDestroy(blas);
    return rows;
}

// Token choice over the full vocabulary (129,280) for a decode batch: the greedy argmax (one
// read of each row) against the draw at temperature > 0 (each row read again per radix pass,
// mostly from L2), plain and with every cut. Bytes: each row once.
std::vector<Row> bench_sample(Timer& timer) {
    constexpr int kVocab = 129280, kMaxRows = 256;
    DeviceBuffer logits(std::size_t{kMaxRows} * kVocab * sizeof(float));
    {
        std::vector<float> host = random_floats(std::size_t{kMaxRows} * kVocab, 7);
        for (float& v : host) {
            v *= 8.0f;
        }
        check_cuda(cudaMemcpy(logits.as<void>(), host.data(), host.size() * sizeof(float),
                              cudaMemcpyHostToDevice),
                   "cudaMemcpy logits");
    }
    std::vector<std::int64_t> row_ids(kMaxRows);
    std::iota(row_ids.begin(), row_ids.end(), 0);
    DeviceBuffer rows(row_ids.size() * sizeof(std::int64_t));
    check_cuda(cudaMemcpy(rows.as<void>(), row_ids.data(), row_ids.size() * sizeof(std::int64_t),
                          cudaMemcpyHostToDevice),
               "cudaMemcpy rows");
    DeviceBuffer out(kMaxRows * sizeof(std::int32_t));
    DeviceBuffer params(kMaxRows * sizeof(SampleRow));
    DeviceBuffer done(kMaxRows * sizeof(unsigned)),
        partials(argmax_partials_bytes(kMaxRows, kVocab));
    check_cuda(cudaMemset(done.as<void>(), 0, kMaxRows * sizeof(unsigned)),
               "cudaMemset argmax counters");
    const ArgmaxSplit split{done.as<unsigned>(), partials.as<void>()};
    struct Case {
        const char* name;
        float temperature;
        int top_k;
        float top_p;
        float min_p;
    };
    const Case cases[] = {{"T 1", 1.0f, -1, 1.0f, 0.0f},
                          {"T 0.7, top_p 0.9", 0.7f, -1, 0.9f, 0.0f},
                          {"T 1, top_k 50, top_p 0.95, min_p 0.05", 1.0f, 50, 0.95f, 0.05f}};
    std::vector<Row> table;
    for (int n : {1, 16, 64, 256}) {
        const double bytes = static_cast<double>(n) * kVocab * sizeof(float);
        const double argmax_us = timer.median_us([&] {
            launch_argmax_rows(logits.as<float>(), kVocab, rows.as<std::int64_t>(), n, kVocab,
                               out.as<std::int32_t>(), nullptr, &split, timer.stream());
        });
        table.push_back({"argmax_rows", str_cat(n, " row(s)"), argmax_us, bytes, ""});
        for (const Case& c : cases) {
            std::vector<SampleRow> host;
            for (int i = 0; i < n; ++i) {
                const double canonical = (i + 0.5) / n;
                host.push_back({i, c.temperature, c.top_k, c.top_p, c.min_p, canonical});
            }
            check_cuda(cudaMemcpy(params.as<void>(), host.data(), host.size() * sizeof(SampleRow),
                                  cudaMemcpyHostToDevice),
                       "cudaMemcpy params");
            const double us = timer.median_us([&] {
                launch_sample_rows(logits.as<float>(), kVocab, params.as<SampleRow>(), n, kVocab,
                                   out.as<std::int32_t>(), nullptr, timer.stream());
            });
            table.push_back({"sample_rows", str_cat(n, " row(s), ", c.name), us, bytes, ""});
        }
    }
    return table;
}

// Wall time of one CudaOps call, over `calls` back-to-back calls after a warm-up one, so that
// launch costs and any host work count.
double wall_us_per_call(CudaOps& ops, int calls, const std::function<void()>& call) {
    call();
    ops.synchronize();
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) {
        call();
    }
    ops.synchronize();
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
               .count() /
           calls;
}

// Block-FP8 products through CudaOps::linear (activation quantizer + cuBLASLt) at prefill and
// batched-decode row counts, against the 1,408 TFLOP/s torch._scaled_mm reaches on this GPU.
// Wall time of 20 back-to-back calls, so launch costs count.
void bench_fp8_gemm() {
    constexpr double kPeakTflops = 1408.0;
    CudaOps ops(0);
    std::printf(
        "| product (K -> N) | rows | time (us) | TFLOP/s | %% of %.0f "
        "|\n|---|---:|---:|---:|---:|\n",
        kPeakTflops);
    struct Shape {
        const char* name;
        int k, n;
    };
    for (const Shape& s :
         {Shape{"q_b 1536 -> 24576", 1536, 24576}, Shape{"o 16384 -> 7168", 16384, 7168},
          Shape{"dense up 7168 -> 18432", 7168, 18432},
          Shape{"expert down 2048 -> 7168", 2048, 7168}}) {
        auto w = ops.random_normal({s.n, s.k}, model::NormalInit{1, 0.0f, 0.02f});
        ops.to_device(*w, model::Storage::fp8_block);
        for (int m : {64, 512, 4096}) {
            auto x = ops.random_normal({m, s.k}, model::NormalInit{2, 0.0f, 1.0f});
            model::Tensor y = ops.empty(m, s.n);
            const double us = wall_us_per_call(ops, 20, [&] { ops.linear(*x, *w, y); });
            const double tflops = 2.0 * m * s.n * static_cast<double>(s.k) / (us * 1e6);
            std::printf("| %s | %d | %.1f | %.0f | %.1f |\n", s.name, m, us, tflops,
                        100.0 * tflops / kPeakTflops);
        }
    }
}

// A MoE layer at prefill sizes through CudaOps::moe, the path the server takes: tokens routed to
// 8 of 256 block-FP8 experts (DeepSeek-V3.2's shapes and group-limited routing, random router
// logits) plus the shared expert. Up to 622 tokens the routing and the experts stay on the
// device (grouped GEMV); beyond, the router's choice goes to the host and each active expert's
// rows run through cuBLASLt. FLOPs counted: 2 x tokens x 9 experts x 3 products x 7168 x 2048,
// against the 1,408 TFLOP/s peak. Wall time of back-to-back calls, host routing included.
void bench_moe_prefill() {
    constexpr double kPeakTflops = 1408.0;
    constexpr int kExperts = 256, kHidden = 7168, kInter = 2048;
    CudaOps ops(0);
    model::ModelConfig c;
    c.n_routed_experts = kExperts;
    c.n_group = 8;
    c.topk_group = 4;
    c.num_experts_per_tok = 8;
    c.norm_topk_prob = true;
    c.routed_scaling_factor = 2.5;
    std::vector<model::Tensor> w;
    w.reserve(3 * (kExperts + 1));  // ExpertWeights point into it
    std::uint64_t seed = 1;
    auto weight = [&](int rows, int cols) {
        auto t = ops.random_normal({rows, cols}, model::NormalInit{seed++, 0.0f, 0.02f});
        ops.to_device(*t, model::Storage::fp8_block);
        w.push_back(std::move(*t));
    };
    for (int e = 0; e <= kExperts; ++e) {
        weight(kInter, kHidden);
        weight(kInter, kHidden);
        weight(kHidden, kInter);
    }
    std::vector<model::ExpertWeights> experts;
    for (std::size_t e = 0; e < kExperts; ++e) {
        experts.push_back({&w[3 * e], &w[3 * e + 1], &w[3 * e + 2]});
    }
    const model::ExpertWeights shared{&w[3 * kExperts], &w[3 * kExperts + 1], &w[3 * kExperts + 2]};
    const std::vector<float> bias(kExperts, 0.0f);
    std::printf("| tokens | path | time (us) | TFLOP/s | %% of %.0f |\n|---:|---|---:|---:|---:|\n",
                kPeakTflops);
    constexpr int kWidth = 9;  // 8 routed experts and the shared one
    for (int tokens : {64, 227, 512, 622, 1024, 2048, 4096, 8192}) {
        auto x = ops.random_normal({tokens, kHidden}, model::NormalInit{seed++, 0.0f, 1.0f});
        auto logits = ops.random_normal({tokens, kExperts}, model::NormalInit{seed++, 0.0f, 1.0f});
        model::Tensor out = ops.zeros(tokens, kHidden);
        // Each size on the tiled GEMM, and on what runs without it (the grouped GEMV within its
        // layout's bound, the host path beyond).
        for (bool tiled : {false, true}) {
            ops.set_moe_gemm_rows(tiled ? 1 : std::numeric_limits<std::int64_t>::max());
            const double us = wall_us_per_call(
                ops, 5, [&] { ops.moe(*x, *logits, bias, c, experts, &shared, out); });
            const double tflops = 2.0 * tokens * kWidth * 3.0 * kHidden * kInter / (us * 1e6);
            std::printf("| %d | %s | %.1f | %.1f | %.1f |\n", tokens,
                        tiled ? "device routing, tiled FP8 GEMM"
                        : moe_layout_fits(tokens, kWidth, kExperts + 1)
                            ? "device routing, grouped GEMV"
                            : "host routing, cuBLASLt",
                        us, tflops, 100.0 * tflops / kPeakTflops);
        }
    }
    ops.set_moe_gemm_rows(CudaOps::kDefaultMoeGemmRows);
}

// The lightning indexer (CudaOps::indexer_topk: scores, top-2048, slot mapping) over a float32
// and an FP8 key table, DeepSeek-V3.2's 64 heads of 128: a prefill of one long prompt, and decode
// rows of many sequences with long contexts. TFLOP/s counts the scores' multiply-adds only.
void bench_indexer() {
    constexpr int kHeads = 64, kDim = 128, kTopK = 2048;
    CudaOps ops(0);
    std::uint64_t seed = 1;
    std::printf("| step | keys | path | time (us) | score TFLOP/s |\n|---|---:|---|---:|---:|\n");
    struct Case {
        int seqs, cached, fresh;
    };
    for (const Case c :
         {Case{1, 0, 4096}, {1, 0, 8192}, {1, 8192, 1024}, {64, 8191, 1}, {16, 32767, 1}}) {
        const int per_seq = c.cached + c.fresh, slots = c.seqs * per_seq;
        const int tokens = c.seqs * c.fresh;
        std::vector<std::int32_t> slot_ids(static_cast<std::size_t>(slots));
        std::iota(slot_ids.begin(), slot_ids.end(), 0);
        std::vector<model::SequenceSlots> seqs;
        double pairs = 0;
        for (int s = 0; s < c.seqs; ++s) {
            seqs.push_back({c.cached, c.fresh,
                            std::span<const std::int32_t>(slot_ids).subspan(
                                static_cast<std::size_t>(s) * per_seq, per_seq)});
            for (int j = 0; j < c.fresh; ++j) {
                pairs += c.cached + j + 1 > kTopK ? c.cached + j + 1 : 0;
            }
        }
        auto k = ops.random_normal({slots, kDim}, model::NormalInit{seed++, 0.0f, 1.0f});
        auto q = ops.random_normal({tokens, kHeads * kDim}, model::NormalInit{seed++, 0.0f, 1.0f});
        auto w = ops.random_normal({tokens, kHeads}, model::NormalInit{seed++, 0.0f, 1.0f});
        const std::vector<float> freq(32, 0.01f);
        auto g = ops.random_normal({1, kDim}, model::NormalInit{seed++, 1.0f, 0.1f});
        auto b = ops.random_normal({1, kDim}, model::NormalInit{seed++, 0.0f, 0.1f});
        for (model::Storage storage : {model::Storage::f32, model::Storage::fp8_row}) {
            model::Tensor table = ops.cache_zeros(slots, kDim, storage);
            ops.store_index_key(*k, *g, *b, 1e-6f, 64, slot_ids, freq, 1.0f, slot_ids, table);
            const double us = wall_us_per_call(ops, 5, [&] {
                ops.indexer_topk(*q, *w, seqs, table, kHeads, kDim, 0.088f, kTopK);
            });
            std::printf("| %d x (%d + %d) | %d | %s | %.1f | %.1f |\n", c.seqs, c.cached, c.fresh,
                        per_seq, storage == model::Storage::f32 ? "float32 keys" : "FP8 keys", us,
                        2.0 * pairs * kHeads * kDim / (us * 1e6));
        }
    }
}

// MLA at prefill sizes (CudaOps::mla_attention, 128 heads of DeepSeek's shape, BF16 cache,
// block-FP8 kv_b): the plain multi-head path (mha_prefill.h) against the absorbed one, which a step
// takes when its positions come from the host. One sequence of `cached` + `fresh` tokens.
void bench_mla_prefill() {
    constexpr int kHeads = 128, kNope = 128, kRope = 64, kV = 128, kLora = 512;
    CudaOps ops(0);
    std::uint64_t seed = 1;
    const model::MlaParams p{kHeads, kNope, kRope, kV, kLora, 0.07f};
    auto kv_b = ops.random_normal({kHeads * (kNope + kV), kLora}, {seed++, 0.0f, 0.02f});
    ops.to_device(*kv_b, model::Storage::fp8_block);
    std::printf("| cached + new | path | time (us) |\n|---|---|---:|\n");
    for (const auto& [cached, fresh] : {std::pair{0, 64},
                                        {0, 128},
                                        {0, 256},
                                        {0, 512},
                                        {0, 1024},
                                        {0, 2048},
                                        {256, 256},
                                        {1024, 1024}}) {
        const int slots = cached + fresh;
        auto latent = ops.random_normal({slots, kLora}, {seed++, 0.0f, 1.0f});
        auto rope = ops.random_normal({slots, kRope}, {seed++, 0.0f, 1.0f});
        ops.to_device(*latent, model::Storage::bf16);
        ops.to_device(*rope, model::Storage::bf16);
        auto q = ops.random_normal({fresh, kHeads * (kNope + kRope)}, {seed++, 0.0f, 1.0f});
        model::Tensor out = ops.zeros(fresh, kHeads * kV);
        std::vector<std::int32_t> slot_ids(static_cast<std::size_t>(slots));
        std::iota(slot_ids.begin(), slot_ids.end(), 0);
        const std::vector<model::SequenceSlots> seqs = {{cached, fresh, slot_ids}};
        const model::LayerCacheView cache{&*latent, &*rope, nullptr};
        for (const bool plain : {false, true}) {
            ops.set_mha_tokens(plain ? 1 : std::numeric_limits<std::int64_t>::max());
            const double us = wall_us_per_call(
                ops, 5, [&] { ops.mla_attention(*q, seqs, cache, *kv_b, p, {}, out); });
            std::printf("| %d + %d | %s | %.1f |\n", cached, fresh, plain ? "plain" : "absorbed",
                        us);
        }
    }
}
}  // namespace
}  // namespace dsserve::backend::cuda

// dsserve-cuda-bench [mla] [gemv] [gemv-fp8] [moe] [sample] [absorb] [fp8] [moe-prefill]
// [indexer] [mla-prefill]: the
// named tables only (all when none is named; gemv-fp8 is the tensor-core GEMV's part of gemv).
int main(int argc, char** argv) {
    using namespace dsserve::backend::cuda;
    auto wanted = [&](const char* table) {
        if (argc < 2) {
            return true;
        }
        for (int i = 1; i < argc; ++i) {
            if (std::strcmp(argv[i], table) == 0) {
                return true;
            }
        }
        return false;
    };
    cudaDeviceProp prop{};
    check_cuda(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    std::printf("# dsserve CUDA kernels on %s (%d SMs), median of %d runs, L2 flushed\n\n",
                prop.name, prop.multiProcessorCount, kReps);
    cudaStream_t stream = nullptr;
    check_cuda(cudaStreamCreate(&stream), "cudaStreamCreate");
    {
        Timer timer(stream);
        if (wanted("mla")) {
            std::printf("## MLA decode (128 heads, lora 512, rope 64, float32 cache)\n\n");
            print_table(bench_mla_decode(timer));
        }
        if (wanted("gemv") || wanted("gemv-fp8")) {
            std::printf("\n## GEMV at decode (weights read once)\n\n");
            print_table(bench_gemv(timer, !wanted("gemv")));
        }
        if (wanted("moe")) {
            std::printf("\n## Routed experts at decode (grouped GEMV, block-FP8)\n\n");
            print_table(bench_moe(timer));
        }
        if (wanted("sample")) {
            std::printf("\n## Token choice at decode (vocabulary 129,280)\n\n");
            print_table(bench_sample(timer));
        }
        if (wanted("absorb")) {
            std::printf(
                "\n## MLA kv_b_proj absorb at decode (128 heads, nope 128, v 128, lora 512)\n\n");
            print_table(bench_absorb(timer));
        }
    }
    if (wanted("fp8")) {
        std::printf("\n## Block-FP8 GEMM (quantizer + cuBLASLt)\n\n");
        bench_fp8_gemm();
    }
    if (wanted("mla-prefill")) {
        std::printf("\n## MLA at prefill sizes (128 heads, BF16 cache, block-FP8 kv_b)\n\n");
        bench_mla_prefill();
    }
    if (wanted("indexer")) {
        std::printf("\n## The lightning indexer (64 heads of 128, top 2,048)\n\n");
        bench_indexer();
    }
    if (wanted("moe-prefill")) {
        std::printf(
            "\n## A MoE layer at prefill sizes (CudaOps::moe, 8 of 256 experts + shared)\n\n");
        bench_moe_prefill();
    }
    check_cuda(cudaStreamDestroy(stream), "cudaStreamDestroy");
    return 0;
}
