#ifndef DDLM_COORDINATOR_RPC_RPC_STATS_INTERCEPTOR_H_
#define DDLM_COORDINATOR_RPC_RPC_STATS_INTERCEPTOR_H_

// A gRPC server interceptor that records every call's method, status code and latency
// in an RpcStats (coordinator/metrics/rpc_stats.h): from the call's arrival to the status
// it sends, or, for a call that ends without one (the client went away), to its end,
// counted as CANCELLED.
//
// Threading: gRPC creates one interceptor per call and runs it on the call's threads;
// RpcStats is thread-safe.

#include <grpcpp/support/server_interceptor.h>

#include "coordinator/metrics/rpc_stats.h"

namespace ddlm {

class RpcStatsInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcStatsInterceptorFactory(RpcStats* stats /* not owned */) : stats_(stats) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override;

 private:
  RpcStats* stats_;
};

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_RPC_RPC_STATS_INTERCEPTOR_H_
