// Starts tests/bench/fake_server.py on a free port for the length of a test and stops it after.
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/http_client.h"

namespace dsserve::bench::testing {

inline std::string fake_server_script() {
    return std::string(DSSERVE_TESTS_SOURCE_DIR) + "/bench/fake_server.py";
}

class FakeServer {
public:
    explicit FakeServer(std::vector<std::string> args = {}) {
        int fds[2];
        if (pipe(fds) != 0) {
            throw std::runtime_error("pipe failed");
        }
        pid_ = fork();
        if (pid_ == 0) {
            dup2(fds[1], 1);
            close(fds[0]);
            close(fds[1]);
            std::vector<std::string> argv_s = {"python3", fake_server_script()};
            argv_s.insert(argv_s.end(), args.begin(), args.end());
            std::vector<char*> argv;
            for (auto& a : argv_s) {
                argv.push_back(a.data());
            }
            argv.push_back(nullptr);
            execvp("python3", argv.data());
            _exit(127);
        }
        close(fds[1]);
        std::string line;
        char c = 0;
        while (read(fds[0], &c, 1) == 1 && c != '\n') {
            line += c;
        }
        close(fds[0]);
        if (line.empty()) {
            throw std::runtime_error("fake server did not start");
        }
        port_ = std::stoi(line);
    }
    ~FakeServer() {
        if (pid_ > 0) {
            kill(pid_, SIGTERM);
            int status = 0;
            waitpid(pid_, &status, 0);
        }
    }
    FakeServer(const FakeServer&) = delete;
    FakeServer& operator=(const FakeServer&) = delete;

    int port() const { return port_; }
    Url url() const { return Url::from_host_port("127.0.0.1", port_); }

private:
    pid_t pid_ = -1;
    int port_ = 0;
};

}  // namespace dsserve::bench::testing
