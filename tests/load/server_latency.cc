#include "tests/load/server_latency.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace ddlm {
namespace {

// The value of label `name` in `labels` (the text between { and }), or "".
std::string Label(absl::string_view labels, absl::string_view name) {
  const std::string key = absl::StrCat(name, "=\"");
  const size_t at = labels.find(key);
  if (at == absl::string_view::npos) return "";
  const size_t start = at + key.size();
  const size_t end = labels.find('"', start);
  if (end == absl::string_view::npos) return "";
  return std::string(labels.substr(start, end - start));
}

}  // namespace

absl::StatusOr<std::map<std::string, CumulativeHistogram>> ParseRpcDurationHistograms(const std::string& page) {
  std::map<std::string, CumulativeHistogram> out;
  constexpr absl::string_view kPrefix = "ddlm_rpc_duration_seconds_bucket{";
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (!absl::StartsWith(line, kPrefix)) continue;
    const size_t close = line.find('}');
    if (close == absl::string_view::npos) return absl::InvalidArgumentError(absl::StrCat("no '}' in: ", line));
    const absl::string_view labels = line.substr(kPrefix.size(), close - kPrefix.size());
    const std::string method = Label(labels, "method");
    const std::string le = Label(labels, "le");
    double bound = 0;
    if (le == "+Inf") {
      bound = std::numeric_limits<double>::infinity();
    } else if (!absl::SimpleAtod(le, &bound)) {
      return absl::InvalidArgumentError(absl::StrCat("bad le in: ", line));
    }
    double count = 0;
    if (method.empty() || !absl::SimpleAtod(absl::StripAsciiWhitespace(line.substr(close + 1)), &count) || count < 0) {
      return absl::InvalidArgumentError(absl::StrCat("bad sample: ", line));
    }
    out[method].emplace_back(bound, static_cast<int64_t>(count));
  }
  return out;
}

WindowQuantile QuantileBetween(const CumulativeHistogram& before, const CumulativeHistogram& after, double q) {
  auto at = [](const CumulativeHistogram& h, size_t i) -> int64_t { return i < h.size() ? h[i].second : 0; };
  WindowQuantile result;
  if (after.empty()) return result;
  result.count = after.back().second - at(before, after.size() - 1);
  if (result.count <= 0) return result;
  const double target = q * static_cast<double>(result.count);
  for (size_t i = 0; i < after.size(); ++i) {
    if (static_cast<double>(after[i].second - at(before, i)) >= target) {
      result.upper_s = after[i].first;
      return result;
    }
  }
  result.upper_s = after.back().first;
  return result;
}

absl::StatusOr<std::string> HttpGet(const std::string& host, int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("socket: ", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat("not an IPv4 address: '", host, "'"));
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    ::close(fd);
    return absl::UnavailableError(absl::StrCat("connect ", host, ":", port, ": ", std::strerror(err)));
  }
  const std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: ", host, "\r\n\r\n");
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      ::close(fd);
      return absl::UnavailableError(absl::StrCat("send to ", host, ":", port, " failed"));
    }
    sent += static_cast<size_t>(n);
  }
  std::string response;
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    response.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  const size_t body = response.find("\r\n\r\n");
  if (!absl::StartsWith(response, "HTTP/1.") || body == std::string::npos) {
    return absl::InternalError(absl::StrCat("not an HTTP response from ", host, ":", port));
  }
  const absl::string_view status_line = absl::string_view(response).substr(0, response.find("\r\n"));
  if (!absl::StrContains(status_line, " 200")) {
    return absl::InternalError(absl::StrCat("GET ", path, ": ", status_line));
  }
  return response.substr(body + 4);
}

}  // namespace ddlm
