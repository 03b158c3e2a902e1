#ifndef DDLM_COORDINATOR_METRICS_METRICS_HTTP_SERVER_H_
#define DDLM_COORDINATOR_METRICS_METRICS_HTTP_SERVER_H_

// Serves GET /metrics over plain HTTP for Prometheus to scrape, with GNU libmicrohttpd
// (Debian's libmicrohttpd). Any other path is 404, any other method 405.
//
// It polls with epoll (MHD_USE_AUTO): select() would refuse connections once the
// coordinator's descriptors pass 1024.
//
// Threading: libmicrohttpd's own polling thread calls `render` for each scrape; `render`
// must be thread-safe. Destruction stops the thread and waits for it.

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

struct MHD_Daemon;

namespace ddlm {

class MetricsHttpServer {
 public:
  // Listens on `address` (an IPv4 address) and `port` (0: any free port).
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const std::string& address, int port,
                                                                  std::function<std::string()> render);
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  int port() const { return port_; }

 private:
  MetricsHttpServer() = default;

  // What libmicrohttpd's thread reads: it must not move while the daemon runs.
  std::unique_ptr<std::function<std::string()>> render_;
  MHD_Daemon* daemon_ = nullptr;
  int port_ = 0;
};

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_METRICS_METRICS_HTTP_SERVER_H_
