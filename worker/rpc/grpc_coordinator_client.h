#ifndef DDLM_WORKER_RPC_GRPC_COORDINATOR_CLIENT_H_
#define DDLM_WORKER_RPC_GRPC_COORDINATOR_CLIENT_H_

// CoordinatorClient over gRPC (ddlm.WorkerService). Every call has a deadline, so a
// worker never hangs on a coordinator that has gone: unary calls `rpc_timeout`;
// ReportEvaluation the caller's timeout, KeyWait the caller's timeout plus
// `rpc_timeout`; shard and checkpoint transfers `transfer_timeout`. Only the command
// stream is open-ended (the worker ends it when heartbeats stop being answered).
// Thread-safe (gRPC stubs are).

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "proto/worker_service.grpc.pb.h"
#include "worker/coordinator_client.h"

namespace ddlm {

std::unique_ptr<CoordinatorClient> NewGrpcCoordinatorClient(std::shared_ptr<grpc::Channel> channel,
                                                            absl::Duration rpc_timeout = absl::Seconds(60),
                                                            absl::Duration transfer_timeout = absl::Minutes(10));

// A channel to `address` ("host:port") with message limits large enough for a
// vocabulary in an assignment, which tries to reconnect to a coordinator that went
// away at least every 2 s (gRPC's default backoff grows to 2 min, and a restarted
// coordinator would wait that long for its workers). `credentials`: TLS and token, or
// plain text (common/transport/transport_security.h).
std::shared_ptr<grpc::Channel> NewCoordinatorChannel(const std::string& address,
                                                     std::shared_ptr<grpc::ChannelCredentials> credentials);

}  // namespace ddlm

#endif  // DDLM_WORKER_RPC_GRPC_COORDINATOR_CLIENT_H_
