#include "server/http.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>

namespace dsserve::server {
namespace {

// A connected pair of blocking stream sockets, closed at the end of the test.
struct SocketPair {
    int fds[2] = {-1, -1};
    SocketPair() { EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0); }
    ~SocketPair() {
        for (int fd : fds) {
            if (fd >= 0) {
                close(fd);
            }
        }
    }
};

// The server probes a connection that polled readable while it responds. Readiness can be
// spurious, so the probe of a live idle connection must come back at once: a probe that waits for
// a byte held the connection's strand, and the response, until the client gave up.
TEST(ProbePeer, IdleConnectionAnswersWithoutBlocking) {
    SocketPair s;
    auto probe = std::async(std::launch::async, [&] { return probe_peer(s.fds[0]); });
    if (probe.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
        ASSERT_EQ(write(s.fds[1], "x", 1), 1);  // release the blocked probe before failing
        probe.wait();
        FAIL() << "probe_peer blocked on an idle connection";
    }
    EXPECT_EQ(probe.get(), PeerState::kIdle);
}

TEST(ProbePeer, PendingBytesAreLeftInPlace) {
    SocketPair s;
    ASSERT_EQ(write(s.fds[1], "ab", 2), 2);
    EXPECT_EQ(probe_peer(s.fds[0]), PeerState::kData);
    EXPECT_EQ(probe_peer(s.fds[0]), PeerState::kData);
    char buf[2] = {};
    ASSERT_EQ(read(s.fds[0], buf, 2), 2);  // the peek consumed nothing
    EXPECT_EQ(std::string(buf, 2), "ab");
    EXPECT_EQ(probe_peer(s.fds[0]), PeerState::kIdle);
}

TEST(ProbePeer, ClosedPeer) {
    SocketPair s;
    close(s.fds[1]);
    s.fds[1] = -1;
    EXPECT_EQ(probe_peer(s.fds[0]), PeerState::kClosed);
    EXPECT_EQ(probe_peer(-1), PeerState::kClosed);  // not a socket at all: nothing to serve
}

}  // namespace
}  // namespace dsserve::server
