#ifndef DDLM_WORKER_RPC_GRPC_COORDINATOR_CLIENT_H_
#define DDLM_WORKER_RPC_GRPC_COORDINATOR_CLIENT_H_

// CoordinatorClient over gRPC (ddlm.WorkerService). Unary calls get a deadline of
// `rpc_timeout`; ReportEvaluation and KeyWait get the caller's timeout plus slack.
// Thread-safe (gRPC stubs are).

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "proto/worker_service.grpc.pb.h"
#include "worker/coordinator_client.h"

namespace ddlm {

std::unique_ptr<CoordinatorClient> NewGrpcCoordinatorClient(
    std::shared_ptr<grpc::Channel> channel, absl::Duration rpc_timeout = absl::Seconds(60));

// A channel to `address` ("host:port") with message limits large enough for a
// vocabulary in an assignment.
std::shared_ptr<grpc::Channel> NewCoordinatorChannel(const std::string& address);

}  // namespace ddlm

#endif  // DDLM_WORKER_RPC_GRPC_COORDINATOR_CLIENT_H_
