#include "bench/sweep.h"

#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "core/error.h"
#include "core/file.h"

namespace dsserve::bench {

namespace {

// Output throughput on the left, TTFT and TPOT (median and P99) on the right, concurrency on a
// log2 axis: the layout of the SGLang guide's sweep picture.
constexpr const char* kPlotScript = R"PY(
import csv, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

src, dst, title = sys.argv[1], sys.argv[2], sys.argv[3]
with open(src, newline="") as f:
    rows = list(csv.DictReader(f))
x = [int(r["concurrency"]) for r in rows]
col = lambda k: [float(r[k]) for r in rows]
fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
a.plot(x, col("output_throughput"), "o-", label="output tok/s")
a.plot(x, col("total_throughput"), "s--", label="total tok/s")
a.set_xlabel("max concurrency"); a.set_ylabel("tokens / s"); a.set_title("Throughput")
b.plot(x, col("median_ttft_ms"), "o-", label="median TTFT")
b.plot(x, col("p99_ttft_ms"), "o:", label="P99 TTFT")
b.plot(x, col("median_tpot_ms"), "s-", label="median TPOT")
b.plot(x, col("p99_tpot_ms"), "s:", label="P99 TPOT")
b.set_xlabel("max concurrency"); b.set_ylabel("ms"); b.set_yscale("log"); b.set_title("Latency")
for ax in (a, b):
    ax.set_xscale("log", base=2); ax.set_xticks(x); ax.set_xticklabels([str(v) for v in x])
    ax.grid(True, alpha=0.3); ax.legend()
fig.suptitle(title)
fig.tight_layout()
fig.savefig(dst, dpi=120)
)PY";

}  // namespace

std::vector<std::int64_t> parse_concurrency_list(std::string_view text) {
    std::vector<std::int64_t> out;
    std::size_t begin = 0;
    while (begin <= text.size()) {
        std::size_t end = text.find(',', begin);
        if (end == std::string_view::npos) {
            end = text.size();
        }
        const std::string_view item = text.substr(begin, end - begin);
        std::int64_t v = 0;
        auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
        DS_CHECK(ec == std::errc() && ptr == item.data() + item.size() && v >= 1,
                 "--sweep-concurrency takes positive integers separated by commas, got '", text,
                 "'");
        out.push_back(v);
        begin = end + 1;
    }
    return out;
}

std::string sweep_csv(const std::vector<SweepPoint>& points) {
    std::string out =
        "concurrency,completed,failed,duration_s,request_throughput,output_throughput,"
        "total_throughput,mean_ttft_ms,median_ttft_ms,p99_ttft_ms,mean_tpot_ms,median_tpot_ms,"
        "p99_tpot_ms,mean_itl_ms,median_itl_ms,p99_itl_ms,mean_e2e_latency_ms\n";
    for (const SweepPoint& p : points) {
        const BenchmarkMetrics& m = p.metrics;
        char buf[512];
        std::snprintf(buf, sizeof buf,
                      "%lld,%lld,%lld,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,"
                      "%.4f,%.4f\n",
                      static_cast<long long>(p.concurrency), static_cast<long long>(m.completed),
                      static_cast<long long>(m.failed), m.duration_s, m.request_throughput,
                      m.output_throughput, m.total_throughput, m.ttft_ms.mean, m.ttft_ms.median,
                      m.ttft_ms.p99, m.tpot_ms.mean, m.tpot_ms.median, m.tpot_ms.p99, m.itl_ms.mean,
                      m.itl_ms.median, m.itl_ms.p99, m.e2e_ms.mean);
        out += buf;
    }
    return out;
}

namespace {

// Exit status of `python -c script args...`, or 127 when python cannot be run.
int run_python(const char* python, const std::filesystem::path& csv,
               const std::filesystem::path& png, const std::string& title) {
    const pid_t pid = fork();
    if (pid < 0) {
        return 127;
    }
    if (pid == 0) {
        const std::string src = csv.string(), dst = png.string();
        execlp(python, python, "-c", kPlotScript, src.c_str(), dst.c_str(), title.c_str(),
               static_cast<char*>(nullptr));
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

}  // namespace

std::string plot_sweep(const std::filesystem::path& csv, const std::filesystem::path& png,
                       const std::string& title) {
    // $DSSERVE_PYTHON when set; else the python3 on PATH, then Debian's own, which has
    // python3-matplotlib even when a virtualenv or pyenv python3 comes first on PATH.
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("DSSERVE_PYTHON"); env != nullptr && *env != '\0') {
        candidates.push_back(env);
    }
    candidates.push_back("python3");
    candidates.push_back("/usr/bin/python3");
    bool found = false;
    for (const std::string& python : candidates) {
        const int rc = run_python(python.c_str(), csv, png, title);
        if (rc == 0) {
            return {};
        }
        found = found || rc != 127;
    }
    return found ? "python3 could not draw the plot (is python3-matplotlib installed? apt-get "
                   "install python3-matplotlib)"
                 : "python3 not found";
}

}  // namespace dsserve::bench
