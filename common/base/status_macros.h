#ifndef DDLM_COMMON_BASE_STATUS_MACROS_H_
#define DDLM_COMMON_BASE_STATUS_MACROS_H_

// Early-return helpers for absl::Status / absl::StatusOr (Abseil 20220623 ships none).

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define DDLM_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::absl::Status ddlm_status_ = (expr);        \
    if (!ddlm_status_.ok()) return ddlm_status_; \
  } while (0)

#define DDLM_CONCAT_INNER_(a, b) a##b
#define DDLM_CONCAT_(a, b) DDLM_CONCAT_INNER_(a, b)

#define DDLM_ASSIGN_OR_RETURN(lhs, expr) DDLM_ASSIGN_OR_RETURN_IMPL_(DDLM_CONCAT_(ddlm_statusor_, __LINE__), lhs, expr)

#define DDLM_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                \
  if (!statusor.ok()) return statusor.status();          \
  lhs = std::move(statusor).value()

// The same for functions that return another status type (a gRPC handler's
// grpc::Status): `convert` maps the absl::Status, e.g. ToGrpcStatus.
#define DDLM_RETURN_IF_ERROR_AS(expr, convert)            \
  do {                                                    \
    ::absl::Status ddlm_status_ = (expr);                 \
    if (!ddlm_status_.ok()) return convert(ddlm_status_); \
  } while (0)

#define DDLM_ASSIGN_OR_RETURN_AS(lhs, expr, convert) \
  DDLM_ASSIGN_OR_RETURN_AS_IMPL_(DDLM_CONCAT_(ddlm_statusor_, __LINE__), lhs, expr, convert)

#define DDLM_ASSIGN_OR_RETURN_AS_IMPL_(statusor, lhs, expr, convert) \
  auto statusor = (expr);                                            \
  if (!statusor.ok()) return convert(statusor.status());             \
  lhs = std::move(statusor).value()

#endif  // DDLM_COMMON_BASE_STATUS_MACROS_H_
