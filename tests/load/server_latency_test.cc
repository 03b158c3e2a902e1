#include "tests/load/server_latency.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

std::string Page(int64_t fast, int64_t slow, int64_t inf) {
  // 3 buckets: <= 1 ms, <= 10 ms, +Inf (cumulative), and another method.
  return absl::StrCat(
      "# TYPE ddlm_rpc_duration_seconds histogram\n",
      "ddlm_rpc_duration_seconds_bucket{method=\"/ddlm.WorkerService/Heartbeat\",le=\"0.001\"} ", fast, "\n",
      "ddlm_rpc_duration_seconds_bucket{method=\"/ddlm.WorkerService/Heartbeat\",le=\"0.01\"} ", fast + slow, "\n",
      "ddlm_rpc_duration_seconds_bucket{method=\"/ddlm.WorkerService/Heartbeat\",le=\"+Inf\"} ", fast + slow + inf,
      "\n", "ddlm_rpc_duration_seconds_sum{method=\"/ddlm.WorkerService/Heartbeat\"} 1.5\n",
      "ddlm_rpc_duration_seconds_bucket{method=\"/ddlm.JobService/GetJob\",le=\"0.001\"} 7\n",
      "ddlm_rpc_duration_seconds_bucket{method=\"/ddlm.JobService/GetJob\",le=\"0.01\"} 7\n",
      "ddlm_rpc_duration_seconds_bucket{method=\"/ddlm.JobService/GetJob\",le=\"+Inf\"} 7\n",
      "ddlm_rpc_requests_total{method=\"/ddlm.JobService/GetJob\",code=\"OK\"} 7\n");
}

TEST(ServerLatencyTest, ParsesEveryMethodsBuckets) {
  auto parsed = ParseRpcDurationHistograms(Page(90, 9, 1));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), 2u);
  const CumulativeHistogram& h = parsed->at("/ddlm.WorkerService/Heartbeat");
  ASSERT_EQ(h.size(), 3u);
  EXPECT_DOUBLE_EQ(h[0].first, 0.001);
  EXPECT_EQ(h[1].second, 99);
  EXPECT_TRUE(std::isinf(h[2].first));
  EXPECT_EQ(h[2].second, 100);
}

TEST(ServerLatencyTest, QuantileCountsOnlyTheWindow) {
  auto before = ParseRpcDurationHistograms(Page(1000, 0, 0));      // A fast past...
  auto after = ParseRpcDurationHistograms(Page(1000 + 90, 9, 1));  // ...then 100 calls, 10 slow.
  ASSERT_TRUE(before.ok() && after.ok());
  const auto& b = before->at("/ddlm.WorkerService/Heartbeat");
  const auto& a = after->at("/ddlm.WorkerService/Heartbeat");
  WindowQuantile p50 = QuantileBetween(b, a, 0.5);
  EXPECT_EQ(p50.count, 100);
  EXPECT_DOUBLE_EQ(p50.upper_s, 0.001);
  EXPECT_DOUBLE_EQ(QuantileBetween(b, a, 0.99).upper_s, 0.01);
  EXPECT_TRUE(std::isinf(QuantileBetween(b, a, 1.0).upper_s));
  // Without the window (from nothing), the fast past dominates.
  EXPECT_DOUBLE_EQ(QuantileBetween({}, a, 0.99).upper_s, 0.001);
  // No calls in the window.
  EXPECT_EQ(QuantileBetween(a, a, 0.99).count, 0);
}

TEST(ServerLatencyTest, RefusesMalformedSamplesNamingTheLine) {
  auto bad = ParseRpcDurationHistograms("ddlm_rpc_duration_seconds_bucket{method=\"/m\",le=\"x\"} 3\n");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), ::testing::HasSubstr("le=\"x\""));
  auto negative = ParseRpcDurationHistograms("ddlm_rpc_duration_seconds_bucket{method=\"/m\",le=\"1\"} -3\n");
  EXPECT_EQ(negative.status().code(), absl::StatusCode::kInvalidArgument);
}

// Serves one canned response on a loopback port of its own (port 0), then closes.
class OneShotServer {
 public:
  explicit OneShotServer(std::string response) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd_, 1), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this, response = std::move(response)] {
      const int conn = ::accept(fd_, nullptr, nullptr);
      if (conn < 0) return;
      char buffer[4096];
      std::string request;
      while (request.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::recv(conn, buffer, sizeof(buffer), 0);
        if (n <= 0) break;
        request.append(buffer, static_cast<size_t>(n));
      }
      request_ = request;
      (void)::send(conn, response.data(), response.size(), MSG_NOSIGNAL);
      ::close(conn);
    });
  }
  ~OneShotServer() {
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  // After the server's thread is done (the client has read the whole response).
  const std::string& request() const { return request_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::string request_;
};

TEST(ServerLatencyTest, HttpGetReturnsTheBodyOfA200) {
  OneShotServer server("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nddlm_up 1\n");
  absl::StatusOr<std::string> got = HttpGet("127.0.0.1", server.port(), "/metrics");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "ddlm_up 1\n");
}

TEST(ServerLatencyTest, HttpGetRefusesOtherStatusesAndBadAddresses) {
  {
    OneShotServer server("HTTP/1.0 404 Not Found\r\n\r\nno");
    absl::StatusOr<std::string> got = HttpGet("127.0.0.1", server.port(), "/nothing");
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInternal);
    EXPECT_THAT(got.status().message(), ::testing::HasSubstr("404"));
  }
  EXPECT_EQ(HttpGet("localhost", 80, "/").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ddlm
