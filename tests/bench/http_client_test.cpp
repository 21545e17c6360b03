#include "bench/http_client.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "fake_server.h"

namespace dsserve::bench {
namespace {

TEST(Url, ParseForms) {
    Url u = Url::parse("http://localhost:30000");
    EXPECT_EQ(u.host, "localhost");
    EXPECT_EQ(u.port, "30000");
    EXPECT_EQ(u.prefix, "");
    u = Url::parse("http://10.0.0.1/api/");
    EXPECT_EQ(u.port, "80");
    EXPECT_EQ(u.prefix, "/api");
    EXPECT_EQ(Url::from_host_port("http://127.0.0.1", 8000).str(), "http://127.0.0.1:8000");
    EXPECT_THROW(Url::parse("https://x"), Error);
    EXPECT_THROW(Url::parse("http://x:99999"), Error);
}

TEST(HttpFetch, GetsABodyAndReportsRefusedConnections) {
    testing::FakeServer server;
    const HttpResponse r = http_fetch(server.url(), {"GET", "/v1/models", "", {}});
    EXPECT_TRUE(r.ok()) << r.error;
    EXPECT_NE(r.body.find("fake-model"), std::string::npos);
    const HttpResponse missing = http_fetch(server.url(), {"GET", "/nope", "", {}});
    EXPECT_EQ(missing.status, 404);
    EXPECT_FALSE(missing.ok());
    const HttpResponse refused = http_fetch(Url::parse("http://127.0.0.1:1"), {"GET", "/", "", {}});
    EXPECT_EQ(refused.status, 0);
    EXPECT_FALSE(refused.error.empty());
}

}  // namespace
}  // namespace dsserve::bench
