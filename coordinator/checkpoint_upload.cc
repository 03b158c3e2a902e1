#include "coordinator/checkpoint_upload.h"

#include <google/protobuf/util/message_differencer.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/checkpoint_format.h"
#include "common/base/file_io.h"
#include "common/base/model_size.h"
#include "common/base/status_macros.h"
#include "coordinator/checkpoint_store.h"

namespace ddlm {

CheckpointUpload::CheckpointUpload(JobStore* store, const AttemptRef& attempt, std::string staging, Expected expected,
                                   Keep keep)
    : store_(store),
      attempt_(attempt),
      staging_(std::move(staging)),
      expected_(std::move(expected)),
      keep_(std::move(keep)) {}

absl::StatusOr<std::unique_ptr<CheckpointUpload>> CheckpointUpload::Create(JobStore* store, const AttemptRef& attempt,
                                                                           std::string staging, Expected expected,
                                                                           Keep keep) {
  std::unique_ptr<CheckpointUpload> upload(
      new CheckpointUpload(store, attempt, std::move(staging), std::move(expected), std::move(keep)));
  DDLM_ASSIGN_OR_RETURN(upload->fd_, store->CreateCheckpointFile(attempt.job_id(), upload->staging_));
  return upload;
}

CheckpointUpload::~CheckpointUpload() {
  if (fd_ >= 0) ::close(fd_);
  if (!kept_) (void)store_->DeleteCheckpoint(attempt_.job_id(), staging_);
}

std::string CheckpointUpload::Path() const { return store_->CheckpointPath(attempt_.job_id(), staging_); }

absl::Status CheckpointUpload::Append(absl::string_view data) {
  if (fd_ < 0) return absl::FailedPreconditionError("the upload is over");
  if (written_ + static_cast<int64_t>(data.size()) > expected_.max_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("checkpoint upload for ", attempt_.job_id(), " passes ", expected_.max_bytes,
                     " bytes, the most a checkpoint of this job can take (its model has ",
                     ParameterCount(expected_.model, expected_.vocabulary_size), " parameters)"));
  }
  DDLM_RETURN_IF_ERROR(WriteAll(fd_, data, Path()));
  written_ += static_cast<int64_t>(data.size());
  return absl::OkStatus();
}

absl::StatusOr<CheckpointInfo> CheckpointUpload::Finish() {
  if (fd_ < 0) return absl::FailedPreconditionError("the upload is over");
  const std::string path = Path();
  const int fd = std::exchange(fd_, -1);
  const bool synced = ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!synced) return absl::InternalError(absl::StrCat("cannot fsync ", path, ": ", std::strerror(err)));
  // The bytes are at most expected_.max_bytes.
  DDLM_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  const std::string source = absl::StrCat("checkpoint upload for ", attempt_.job_id());
  CheckpointHeader header;
  DDLM_ASSIGN_OR_RETURN(CheckpointInfo info, DescribeUpload(bytes, attempt_.attempt(), source, &header));
  if (!google::protobuf::util::MessageDifferencer::Equals(header.spec().model(), expected_.model)) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": its model is not the job's (", header.spec().model().ShortDebugString(), ")"));
  }
  if (header.vocabulary_size() != expected_.vocabulary_size) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": its vocabulary has ", header.vocabulary_size(),
                                                   " words, the job's ", expected_.vocabulary_size));
  }
  absl::StatusOr<CheckpointInfo> kept = keep_(staging_, info);
  kept_ = kept.ok();
  return kept;
}

}  // namespace ddlm
