#include "coordinator/job_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"

namespace ddlm {
namespace {

constexpr absl::string_view kMagic = "DDLMJOB1";

absl::Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) == 0 || errno == EEXIST) return absl::OkStatus();
  const int err = errno;
  std::string message = absl::StrCat("cannot create directory ", path, ": ", std::strerror(err));
  return err == EACCES ? absl::PermissionDeniedError(message) : absl::InternalError(message);
}

}  // namespace

std::string EncodeJobRecord(const JobRecord& record) {
  std::string body = record.SerializeAsString();
  const uint32_t crc = Crc32(body);
  std::string out(kMagic);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  out += body;
  return out;
}

absl::StatusOr<JobRecord> DecodeJobRecord(absl::string_view bytes, absl::string_view source) {
  if (bytes.size() < kMagic.size() + 4 || bytes.substr(0, kMagic.size()) != kMagic) {
    return absl::DataLossError(absl::StrCat(source, ": not a ddlm job record (bad header)"));
  }
  uint32_t crc = 0;
  for (int i = 0; i < 4; ++i) {
    crc |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[kMagic.size() + i])) << (8 * i);
  }
  absl::string_view body = bytes.substr(kMagic.size() + 4);
  if (Crc32(body) != crc) {
    return absl::DataLossError(absl::StrCat(source, ": job record fails its CRC-32 check"));
  }
  JobRecord record;
  if (!record.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return absl::DataLossError(absl::StrCat(source, ": job record does not parse"));
  }
  return record;
}

absl::Status JobStore::Init() {
  if (absl::Status s = MakeDir(state_dir_); !s.ok()) return s;
  return MakeDir(state_dir_ + "/jobs");
}

std::string JobStore::JobDir(const std::string& job_id) const {
  return absl::StrCat(state_dir_, "/jobs/", job_id);
}

absl::Status JobStore::SaveRecord(const JobRecord& record) {
  const std::string dir = JobDir(record.job().id());
  if (absl::Status s = MakeDir(dir); !s.ok()) return s;
  return WriteFileAtomically(dir + "/job.pb", EncodeJobRecord(record));
}

absl::StatusOr<std::vector<JobRecord>> JobStore::LoadAll() {
  const std::string jobs_dir = state_dir_ + "/jobs";
  DIR* dir = ::opendir(jobs_dir.c_str());
  if (dir == nullptr) {
    if (errno == ENOENT) return std::vector<JobRecord>{};
    return absl::InternalError(absl::StrCat("cannot list ", jobs_dir, ": ", std::strerror(errno)));
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  std::vector<JobRecord> records;
  for (const std::string& name : names) {
    const std::string path = absl::StrCat(jobs_dir, "/", name, "/job.pb");
    absl::StatusOr<std::string> bytes = ReadFile(path);
    if (!bytes.ok()) {
      if (bytes.status().code() == absl::StatusCode::kNotFound) continue;  // Not a job dir.
      return bytes.status();
    }
    absl::StatusOr<JobRecord> record = DecodeJobRecord(*bytes, path);
    if (!record.ok()) return record.status();
    records.push_back(*std::move(record));
  }
  // Submission order: job-2 before job-10.
  std::stable_sort(records.begin(), records.end(), [](const JobRecord& a, const JobRecord& b) {
    if (a.job().submitted_unix_seconds() != b.job().submitted_unix_seconds()) {
      return a.job().submitted_unix_seconds() < b.job().submitted_unix_seconds();
    }
    if (a.job().id().size() != b.job().id().size()) return a.job().id().size() < b.job().id().size();
    return a.job().id() < b.job().id();
  });
  return records;
}

std::string JobStore::CheckpointPath(const std::string& job_id,
                                     const std::string& checkpoint_id) const {
  return absl::StrCat(JobDir(job_id), "/checkpoints/", checkpoint_id, ".ckpt");
}

absl::Status JobStore::WriteCheckpoint(const std::string& job_id, const std::string& checkpoint_id,
                                       absl::string_view bytes) {
  if (absl::Status s = MakeDir(JobDir(job_id)); !s.ok()) return s;
  if (absl::Status s = MakeDir(JobDir(job_id) + "/checkpoints"); !s.ok()) return s;
  return WriteFileAtomically(CheckpointPath(job_id, checkpoint_id), bytes);
}

absl::Status JobStore::RenameCheckpoint(const std::string& job_id, const std::string& from,
                                        const std::string& to) {
  const std::string a = CheckpointPath(job_id, from);
  const std::string b = CheckpointPath(job_id, to);
  if (std::rename(a.c_str(), b.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename ", a, " to ", b, ": ", std::strerror(errno)));
  }
  const std::string dir = JobDir(job_id) + "/checkpoints";
  if (int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY); fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  return absl::OkStatus();
}

absl::Status JobStore::DeleteCheckpoint(const std::string& job_id,
                                        const std::string& checkpoint_id) {
  const std::string path = CheckpointPath(job_id, checkpoint_id);
  if (std::remove(path.c_str()) != 0 && errno != ENOENT) {
    return absl::InternalError(absl::StrCat("cannot delete ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace ddlm
