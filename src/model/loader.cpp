#include "model/loader.h"

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "core/log.h"

namespace dsserve::model {
namespace {

std::uint64_t splitmix64(std::uint64_t& state) {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

std::uint64_t fnv1a(const std::string& s) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : s) {
        h = (h ^ c) * 0x100000001b3ull;
    }
    return h;
}

// Standard normal samples by Box-Muller on splitmix64 uniforms.
class Normal {
public:
    explicit Normal(std::uint64_t seed) : state_(seed) {}
    float next() {
        if (has_spare_) {
            has_spare_ = false;
            return spare_;
        }
        double u1 = (static_cast<double>(splitmix64(state_) >> 11) + 0.5) * 0x1.0p-53;
        double u2 = static_cast<double>(splitmix64(state_) >> 11) * 0x1.0p-53;
        double r = std::sqrt(-2.0 * std::log(u1));
        spare_ = static_cast<float>(r * std::sin(2.0 * M_PI * u2));
        has_spare_ = true;
        return static_cast<float>(r * std::cos(2.0 * M_PI * u2));
    }

private:
    std::uint64_t state_;
    float spare_ = 0.0f;
    bool has_spare_ = false;
};

void check_shape(const Checkpoint::Ref& ref, const std::vector<std::int64_t>& want,
                 const std::string& what) {
    DS_CHECK(ref.info->shape == want, ref.file->path().filename().string(), ": tensor ",
             ref.info->name, " has shape ", Json(ref.info->shape).dump(), " but the config needs ",
             Json(want).dump(), what);
}

class Progress {
public:
    Progress(std::size_t total, bool enabled) : total_(total), enabled_(enabled && isatty(2)) {}
    void step(std::size_t done) {
        if (!enabled_) {
            return;
        }
        int width = 40;
        int filled = static_cast<int>(width * done / std::max<std::size_t>(total_, 1));
        std::fprintf(stderr, "\rLoading weights [%.*s%*s] %zu/%zu", filled,
                     "########################################", width - filled, "", done, total_);
        if (done == total_) {
            std::fprintf(stderr, "\n");
        }
        std::fflush(stderr);
    }

private:
    std::size_t total_;
    bool enabled_;
};

}  // namespace

const Tensor& WeightStore::at(const std::string& name) const {
    auto it = tensors_.find(name);
    DS_ASSERT(it != tensors_.end(), "weight ", name, " was not loaded");
    return it->second;
}

Tensor WeightStore::take(const std::string& name) {
    auto it = tensors_.find(name);
    DS_ASSERT(it != tensors_.end(), "weight ", name, " was not loaded");
    Tensor t = std::move(it->second);
    tensors_.erase(it);
    return t;
}

NormalInit random_init(const WeightSpec& spec, std::uint64_t seed) {
    NormalInit init;
    init.state = fnv1a(spec.name) ^ (seed * 0x9e3779b97f4a7c15ull);
    const float fan_in = spec.shape.size() > 1 ? static_cast<float>(spec.shape[1]) : 1.0f;
    switch (spec.kind) {
        case WeightKind::kEmbedding:
            break;
        case WeightKind::kLinear:
        case WeightKind::kHead:
        case WeightKind::kRouter:
        case WeightKind::kGateProj:
            init.std = 1.0f / std::sqrt(fan_in);
            break;
        case WeightKind::kNorm:
            init.mean = 1.0f;
            init.std = 0.1f;
            break;
        case WeightKind::kNormBias:
        case WeightKind::kRouterBias:
            init.std = 0.1f;
            break;
    }
    return init;
}

Tensor random_weight(const WeightSpec& spec, std::uint64_t seed) {
    Tensor t(spec.shape);
    const NormalInit init = random_init(spec, seed);
    Normal normal(init.state);
    for (float& v : t.data) {
        v = init.mean + init.std * normal.next();
    }
    return t;
}

Tensor decode_tensor(const Checkpoint::Ref& ref, const Checkpoint::Ref* scale, int block_n,
                     int block_k) {
    const TensorInfo& info = *ref.info;
    Tensor t(info.shape);
    auto bytes = ref.bytes();
    const std::int64_t n = t.numel();
    float* out = t.data.data();
    switch (info.dtype) {
        case DType::kF32:
            std::memcpy(out, bytes.data(), static_cast<std::size_t>(n) * 4);
            break;
        case DType::kBF16:
            for (std::int64_t i = 0; i < n; ++i) {
                std::uint16_t b;
                std::memcpy(&b, bytes.data() + 2 * i, 2);
                out[i] = bf16_to_float(b);
            }
            break;
        case DType::kF16:
            for (std::int64_t i = 0; i < n; ++i) {
                std::uint16_t b;
                std::memcpy(&b, bytes.data() + 2 * i, 2);
                out[i] = f16_to_float(b);
            }
            break;
        case DType::kF8E4M3: {
            DS_CHECK(scale != nullptr, ref.file->path().filename().string(), ": FP8 tensor ",
                     info.name, " has no ", info.name, "_scale_inv");
            DS_CHECK(info.shape.size() == 2, info.name, ": FP8 tensors must be 2-D");
            const std::int64_t rows = info.shape[0], cols = info.shape[1];
            std::vector<std::int64_t> want{(rows + block_n - 1) / block_n,
                                           (cols + block_k - 1) / block_k};
            check_shape(*scale, want, " (one scale per weight block)");
            Tensor s = decode_tensor(*scale, nullptr, block_n, block_k);
            const std::int64_t scols = want[1];
            for (std::int64_t r = 0; r < rows; ++r) {
                const float* srow = s.data.data() + (r / block_n) * scols;
                for (std::int64_t c = 0; c < cols; ++c) {
                    out[r * cols + c] =
                        fp8_e4m3_to_float(bytes[static_cast<std::size_t>(r * cols + c)]) *
                        srow[c / block_k];
                }
            }
            break;
        }
        case DType::kF8E8M0:
            for (std::int64_t i = 0; i < n; ++i) {
                out[i] = e8m0_to_float(bytes[static_cast<std::size_t>(i)]);
            }
            break;
        case DType::kI64:
        case DType::kI32:
        case DType::kI8:
        case DType::kU8:
            fail(ref.file->path().filename().string(), ": tensor ", info.name, " has dtype ",
                 dtype_name(info.dtype), ", which is not a floating-point weight");
    }
    return t;
}

LoadedWeights load_weights(const ModelConfig& config, const std::filesystem::path& dir,
                           const LoadOptions& options, ThreadPool& pool) {
    auto manifest = weight_manifest(config);
    LoadedWeights loaded;
    std::vector<Tensor> tensors(manifest.size());
    std::vector<char> present(manifest.size(), 1);

    if (options.dummy) {
        pool.parallel_for(manifest.size(), [&](std::size_t b, std::size_t e) {
            for (std::size_t i = b; i < e; ++i) {
                if (options.make_dummy &&
                    options.make_dummy(manifest[i], random_init(manifest[i], options.seed),
                                       tensors[i])) {
                    continue;
                }
                tensors[i] = random_weight(manifest[i], options.seed);
                if (options.place) {
                    options.place(manifest[i], tensors[i]);
                }
            }
        });
    } else {
        Checkpoint ckpt(dir);
        // The MTP layer is stored as layer num_hidden_layers; with the layer count overridden
        // upwards it would silently serve as an ordinary layer.
        for (int layer = 0; layer < config.num_hidden_layers; ++layer) {
            DS_CHECK(ckpt.find(layer_prefix(layer) + "eh_proj.weight") == nullptr,
                     "checkpoint layer ", layer,
                     " is an MTP layer, so the checkpoint has fewer than "
                     "num_hidden_layers = ",
                     config.num_hidden_layers, " decoder layers");
        }
        bool mtp_missing = false;
        for (std::size_t i = 0; i < manifest.size(); ++i) {
            const auto& spec = manifest[i];
            const Checkpoint::Ref* ref = ckpt.find(spec.name);
            if (ref == nullptr && spec.mtp) {
                mtp_missing = true;
                present[i] = 0;
                continue;
            }
            DS_CHECK(ref != nullptr, "checkpoint ", dir.string(), " has no tensor ", spec.name,
                     " that the config needs");
            check_shape(*ref, spec.shape, "");
            if (ref->info->dtype == DType::kF8E4M3) {
                DS_CHECK(spec.kind == WeightKind::kLinear, ref->file->path().filename().string(),
                         ": tensor ", spec.name, " is FP8 but only linear weights may be");
                DS_CHECK(config.quant.fp8, "tensor ", spec.name,
                         " is FP8 but config.json has no fp8 quantization_config");
            }
        }
        if (mtp_missing && config.num_nextn_predict_layers > 0) {
            log::warn("checkpoint has no complete MTP layer ", config.num_hidden_layers,
                      "; speculative decoding with MTP is unavailable");
        }
        Progress progress(manifest.size(), options.progress);
        std::atomic<std::size_t> done{0};
        pool.parallel_for(manifest.size(), [&](std::size_t b, std::size_t e) {
            for (std::size_t i = b; i < e; ++i) {
                if (present[i]) {
                    const auto& ref = ckpt.at(manifest[i].name);
                    const Checkpoint::Ref* scale = ckpt.find(manifest[i].name + "_scale_inv");
                    tensors[i] =
                        decode_tensor(ref, scale, config.quant.block_n, config.quant.block_k);
                    if (options.place) {
                        options.place(manifest[i], tensors[i]);
                    }
                }
                std::size_t d = ++done;
                if (b == 0) {
                    progress.step(d);
                }
            }
        });
        progress.step(manifest.size());
        loaded.mtp_loaded = !mtp_missing && config.num_nextn_predict_layers > 0;
    }
    if (options.dummy) {
        loaded.mtp_loaded = config.num_nextn_predict_layers > 0;
    }
    for (std::size_t i = 0; i < manifest.size(); ++i) {
        if (present[i] && (loaded.mtp_loaded || !manifest[i].mtp)) {
            loaded.store.put(manifest[i].name, std::move(tensors[i]));
        }
    }
    return loaded;
}

}  // namespace dsserve::model
