#include "coordinator/access_control.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/base/file_io.h"
#include "common/base/status_macros.h"

namespace ddlm {

const char* RoleName(Role role) {
  switch (role) {
    case Role::kOpen: return "anyone";
    case Role::kAdmin: return "admin";
    case Role::kUser: return "user";
    case Role::kWorker: return "worker";
  }
  return "?";
}

absl::StatusOr<AccessControl> AccessControl::Parse(absl::string_view text, absl::string_view source) {
  std::map<std::string, Caller> tokens;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    const std::vector<absl::string_view> fields = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    const std::string where = absl::StrCat(source, ":", line_number);
    if (fields.size() != 3) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": expected 'TOKEN ROLE NAME', got ", fields.size(), " field(s)"));
    }
    Caller caller;
    if (fields[1] == "admin") {
      caller.role = Role::kAdmin;
    } else if (fields[1] == "user") {
      caller.role = Role::kUser;
    } else if (fields[1] == "worker") {
      caller.role = Role::kWorker;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(where, ": role '", fields[1], "' is none of admin, user, worker"));
    }
    if (fields[0].size() < 16) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": the token is shorter than 16 characters"));
    }
    for (char ch : fields[0]) {
      if (!absl::ascii_isgraph(static_cast<unsigned char>(ch))) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": the token has a character other than printable ASCII"));
      }
    }
    caller.name = std::string(fields[2]);
    if (!tokens.emplace(std::string(fields[0]), caller).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": this token is already given to another name"));
    }
  }
  if (tokens.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": no tokens"));
  AccessControl access;
  access.tokens_ = std::move(tokens);
  return access;
}

absl::StatusOr<AccessControl> AccessControl::Load(const std::string& path) {
  DDLM_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return Parse(text, path);
}

absl::StatusOr<Caller> AccessControl::Authenticate(const std::optional<std::string>& authorization) const {
  if (!tokens_) return Caller();
  if (!authorization) {
    return absl::UnauthenticatedError("no token: send 'authorization: Bearer <token>' metadata");
  }
  absl::string_view value = *authorization;
  if (!absl::ConsumePrefix(&value, "Bearer ") && !absl::ConsumePrefix(&value, "bearer ")) {
    return absl::UnauthenticatedError("the authorization metadata is not 'Bearer <token>'");
  }
  auto it = tokens_->find(std::string(absl::StripAsciiWhitespace(value)));
  if (it == tokens_->end()) return absl::UnauthenticatedError("unknown token");
  return it->second;
}

absl::Status AccessControl::AllowJobService(const Caller& caller) {
  if (caller.role == Role::kWorker) {
    return absl::PermissionDeniedError(
        absl::StrCat("'", caller.name, "' holds a worker token: JobService needs a user or admin token"));
  }
  return absl::OkStatus();
}

absl::Status AccessControl::AllowWorkerService(const Caller& caller) {
  if (caller.role == Role::kAdmin || caller.role == Role::kUser) {
    return absl::PermissionDeniedError(absl::StrCat("'", caller.name, "' holds a ", RoleName(caller.role),
                                                    " token: WorkerService needs a worker token"));
  }
  return absl::OkStatus();
}

absl::Status AccessControl::AllowJob(const Caller& caller, const std::string& job_id, const std::string& owner) {
  if (caller.role == Role::kOpen || caller.role == Role::kAdmin) return absl::OkStatus();
  if (caller.role == Role::kUser && owner == caller.name) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(job_id, " belongs to another user"));
}

}  // namespace ddlm
