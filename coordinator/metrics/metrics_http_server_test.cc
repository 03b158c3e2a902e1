#include "coordinator/metrics/metrics_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

// A bare HTTP/1.0 request over loopback: the whole reply.
std::string HttpRequest(int port, const std::string& method, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return "connect failed";
  }
  const std::string request = absl::StrCat(method, " ", path, " HTTP/1.0\r\nHost: localhost\r\n\r\n");
  std::string reply;
  if (::write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return "write failed";
  }
  char buffer[4096];
  for (ssize_t n; (n = ::read(fd, buffer, sizeof(buffer))) > 0;) reply.append(buffer, n);
  ::close(fd);
  return reply;
}

TEST(MetricsHttpServerTest, ServesWhatRenderReturnsOnEachScrape) {
  std::atomic<int> scrapes{0};
  auto server = MetricsHttpServer::Start("127.0.0.1", 0, [&] { return absl::StrCat("scrapes ", ++scrapes, "\n"); });
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->port(), 0);
  std::string reply = HttpRequest((*server)->port(), "GET", "/metrics");
  EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.0 200") || absl::StartsWith(reply, "HTTP/1.1 200")) << reply;
  EXPECT_TRUE(absl::StrContains(reply, "text/plain; version=0.0.4")) << reply;
  EXPECT_TRUE(absl::EndsWith(reply, "\r\n\r\nscrapes 1\n")) << reply;
  reply = HttpRequest((*server)->port(), "GET", "/metrics");
  EXPECT_TRUE(absl::EndsWith(reply, "scrapes 2\n")) << reply;
}

TEST(MetricsHttpServerTest, OtherPathsAndMethodsAreRefused) {
  auto server = MetricsHttpServer::Start("127.0.0.1", 0, [] { return std::string("x 1\n"); });
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE(absl::StrContains(HttpRequest((*server)->port(), "GET", "/"), " 404 "));
  EXPECT_TRUE(absl::StrContains(HttpRequest((*server)->port(), "POST", "/metrics"), " 405 "));
}

TEST(MetricsHttpServerTest, BadAddressesAndPortsAreNamed) {
  auto render = [] { return std::string(); };
  auto bad_address = MetricsHttpServer::Start("not-an-ip", 0, render);
  EXPECT_EQ(bad_address.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(bad_address.status().message(), "not-an-ip"));
  EXPECT_EQ(MetricsHttpServer::Start("127.0.0.1", 70000, render).status().code(), absl::StatusCode::kInvalidArgument);
  auto first = MetricsHttpServer::Start("127.0.0.1", 0, render);
  ASSERT_TRUE(first.ok());
  auto taken = MetricsHttpServer::Start("127.0.0.1", (*first)->port(), render);
  EXPECT_EQ(taken.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace ddlm
