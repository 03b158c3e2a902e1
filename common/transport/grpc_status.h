#ifndef DDLM_COMMON_TRANSPORT_GRPC_STATUS_H_
#define DDLM_COMMON_TRANSPORT_GRPC_STATUS_H_

// The one place absl::Status and grpc::Status meet: both use the canonical codes, so
// the code and message carry over unchanged in either direction.

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"

namespace ddlm {

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

inline absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

}  // namespace ddlm

#endif  // DDLM_COMMON_TRANSPORT_GRPC_STATUS_H_
