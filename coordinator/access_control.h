#ifndef DDLM_COORDINATOR_ACCESS_CONTROL_H_
#define DDLM_COORDINATOR_ACCESS_CONTROL_H_

// Who may call what. A tokens file (--tokens_file) gives each bearer token a role and
// a name, one per line:
//
//   # token                           role    name
//   9f2c4e...(at least 16 characters)  admin   alice
//   51d0aa...                          user    bob
//   c7e913...                          worker  rack1-gpu0
//
// Callers send `authorization: Bearer <token>` metadata (over TLS only: gRPC sends
// call credentials on secure channels). The rules:
//   * no token, or one the file does not hold: UNAUTHENTICATED;
//   * JobService: admins and users; a user acts only on the jobs they submitted
//     (Job.owner), sees only those in ListJobs, and an admin on all of them;
//   * WorkerService: workers only; a worker's id is bound to the token name it first
//     registered with (worker_credentials.h);
//   * anything else: PERMISSION_DENIED.
// Without a tokens file, every caller is let through (a coordinator run with
// --insecure on a trusted network, or TLS alone).
//
// Threading: immutable after construction; thread-safe.

#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ddlm {

enum class Role { kOpen, kAdmin, kUser, kWorker };  // kOpen: no tokens file.

struct Caller {
  Role role = Role::kOpen;
  std::string name;  // The token's name; empty when kOpen.
};

class AccessControl {
 public:
  // Open: everyone passes, as kOpen with no name.
  AccessControl() = default;
  // INVALID_ARGUMENT naming `source` and the line for a malformed line, an unknown
  // role, a token shorter than 16 characters, or a token given twice; an empty table
  // is refused too (it would lock everyone out).
  static absl::StatusOr<AccessControl> Parse(absl::string_view text, absl::string_view source);
  static absl::StatusOr<AccessControl> Load(const std::string& path);

  bool open() const { return !tokens_.has_value(); }

  // The caller an "authorization" metadata value (nullopt: none sent) belongs to.
  absl::StatusOr<Caller> Authenticate(const std::optional<std::string>& authorization) const;
  // JobService: admins and users.
  static absl::Status AllowJobService(const Caller& caller);
  // WorkerService: workers.
  static absl::Status AllowWorkerService(const Caller& caller);
  // Job `job_id`, whose Job.owner is `owner`: its owner (the name of the token that
  // submitted it), or an admin.
  static absl::Status AllowJob(const Caller& caller, const std::string& job_id, const std::string& owner);

 private:
  std::optional<std::map<std::string, Caller>> tokens_;  // By token.
};

const char* RoleName(Role role);

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_ACCESS_CONTROL_H_
