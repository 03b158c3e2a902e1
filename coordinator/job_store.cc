#include "coordinator/job_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <glog/logging.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/base/file_io.h"
#include "common/base/status_macros.h"

namespace ddlm {
namespace {

constexpr absl::string_view kMagic = "DDLMJOB1";
constexpr size_t kFrameHeader = 8;
// A frame longer than this is damage, not a record (a job's header and its kept
// checkpoints are a few kilobytes).
constexpr uint32_t kMaxFrame = 64 << 20;
// Open log files kept at once; more are closed (and reopened when next appended to).
constexpr size_t kMaxOpenLogs = 256;

absl::Status ErrnoError(absl::string_view what, const std::string& path, int err) {
  std::string message = absl::StrCat(what, " ", path, ": ", std::strerror(err));
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(message);
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(message);
  return absl::InternalError(message);
}

absl::Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) == 0 || errno == EEXIST) return absl::OkStatus();
  return ErrnoError("cannot create directory", path, errno);
}

void SyncDir(const std::string& dir) {
  if (int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY); fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

void PutU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetU32(absl::string_view bytes) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  return v;
}

}  // namespace

std::string EncodeJobRecord(const JobRecord& record) {
  std::string body = record.SerializeAsString();
  std::string out(kMagic);
  PutU32(out, Crc32(body));
  out += body;
  return out;
}

absl::StatusOr<JobRecord> DecodeJobRecord(absl::string_view bytes, absl::string_view source) {
  if (bytes.size() < kMagic.size() + 4 || bytes.substr(0, kMagic.size()) != kMagic) {
    return absl::DataLossError(absl::StrCat(source, ": not a ddlm job record (bad header)"));
  }
  const uint32_t crc = GetU32(bytes.substr(kMagic.size()));
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

std::string EncodeLogFrame(const JobLogEntry& entry) {
  std::string payload = entry.SerializeAsString();
  std::string out;
  out.reserve(kFrameHeader + payload.size());
  PutU32(out, static_cast<uint32_t>(payload.size()));
  PutU32(out, Crc32(payload));
  out += payload;
  return out;
}

absl::Status ApplyLogEntry(const JobLogEntry& entry, JobRecord& record) {
  if (entry.has_event()) {
    const int64_t expected = record.events_size() + 1;
    if (entry.event().sequence() < expected) return absl::OkStatus();  // Already applied.
    if (entry.event().sequence() > expected) {
      return absl::FailedPreconditionError(
          absl::StrCat("event ", entry.event().sequence(), " follows event ", expected - 1, " (a gap)"));
    }
    *record.add_events() = entry.event();
  }
  *record.mutable_job() = entry.job();
  *record.mutable_checkpoints() = entry.checkpoints();
  return absl::OkStatus();
}

JobStore::~JobStore() {
  for (auto& [id, log] : logs_) ::close(log.fd);
}

absl::Status JobStore::Init() {
  if (absl::Status s = MakeDir(state_dir_); !s.ok()) return s;
  return MakeDir(state_dir_ + "/jobs");
}

std::string JobStore::JobDir(const std::string& job_id) const { return absl::StrCat(state_dir_, "/jobs/", job_id); }

std::string JobStore::LogPath(const std::string& job_id) const { return JobDir(job_id) + "/events.log"; }

absl::StatusOr<JobStore::OpenLog*> JobStore::Open(const std::string& job_id) {
  if (auto it = logs_.find(job_id); it != logs_.end()) return &it->second;
  if (logs_.size() >= kMaxOpenLogs) {
    if (absl::Status s = SyncLogs(); !s.ok()) return s;
    for (auto& [id, log] : logs_) ::close(log.fd);
    logs_.clear();
  }
  const std::string dir = JobDir(job_id);
  if (absl::Status s = MakeDir(dir); !s.ok()) return s;
  const std::string path = LogPath(job_id);
  const bool existed = ::access(path.c_str(), F_OK) == 0;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("cannot open", path, errno);
  const off_t size = ::lseek(fd, 0, SEEK_END);
  if (size < 0) {
    const int err = errno;
    ::close(fd);
    return ErrnoError("cannot seek", path, err);
  }
  if (!existed) SyncDir(dir);  // The new name survives a crash.
  OpenLog& log = logs_[job_id];
  log.fd = fd;
  log.size = size;
  return &log;
}

void JobStore::Close(const std::string& job_id) {
  if (auto it = logs_.find(job_id); it != logs_.end()) {
    ::close(it->second.fd);
    logs_.erase(it);
  }
}

absl::Status JobStore::AppendLog(const std::string& job_id, const JobLogEntry& entry) {
  if (behind_.count(job_id)) {
    return absl::FailedPreconditionError(
        absl::StrCat(LogPath(job_id),
                     " missed an earlier change (a failed write); nothing more is appended "
                     "until the job's record is rewritten whole"));
  }
  absl::StatusOr<OpenLog*> opened = Open(job_id);
  if (!opened.ok()) {
    behind_.insert(job_id);
    return opened.status();
  }
  OpenLog& log = **opened;
  const std::string frame = EncodeLogFrame(entry);
  size_t done = 0;
  while (done < frame.size()) {
    const ssize_t n = ::pwrite(log.fd, frame.data() + done, frame.size() - done,
                               static_cast<off_t>(log.size + static_cast<int64_t>(done)));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : ENOSPC;
      // Cut the partial frame off, so that later frames never follow a torn one.
      if (::ftruncate(log.fd, static_cast<off_t>(log.size)) != 0) {
        LOG(ERROR) << "cannot cut " << LogPath(job_id) << " back to " << log.size << " bytes: " << std::strerror(errno);
      }
      behind_.insert(job_id);
      return ErrnoError("cannot append to", LogPath(job_id), err);
    }
    done += static_cast<size_t>(n);
  }
  log.size += static_cast<int64_t>(frame.size());
  log.dirty = true;
  return absl::OkStatus();
}

absl::Status JobStore::SyncLogs() {
  absl::Status first;
  for (auto& [id, log] : logs_) {
    if (!log.dirty) continue;
    if (::fdatasync(log.fd) != 0) {
      if (first.ok()) first = ErrnoError("cannot sync", LogPath(id), errno);
      continue;
    }
    log.dirty = false;
  }
  return first;
}

absl::Status JobStore::WriteSnapshot(const JobRecord& record) {
  const std::string& job_id = record.job().id();
  if (job_id.empty()) return absl::InvalidArgumentError("a job record without a job id");
  const std::string dir = JobDir(job_id);
  if (absl::Status s = MakeDir(dir); !s.ok()) return s;
  if (absl::Status s = WriteFileAtomically(dir + "/job.pb", EncodeJobRecord(record)); !s.ok()) {
    return s;
  }
  // The snapshot holds everything the log did; entries left by a crash before this
  // truncation carry an older generation and are skipped on load.
  Close(job_id);
  behind_.erase(job_id);
  const std::string path = LogPath(job_id);
  if (::truncate(path.c_str(), 0) != 0 && errno != ENOENT) {
    return ErrnoError("cannot truncate", path, errno);
  }
  return absl::OkStatus();
}

absl::Status JobStore::Replay(const std::string& job_id, JobRecord& record) {
  const std::string path = LogPath(job_id);
  absl::StatusOr<std::string> bytes = ReadFile(path);
  if (!bytes.ok()) {
    return bytes.status().code() == absl::StatusCode::kNotFound ? absl::OkStatus() : bytes.status();
  }
  absl::string_view rest = *bytes;
  size_t good = 0;  // Bytes of whole, valid frames.
  std::string damage;
  while (!rest.empty()) {
    if (rest.size() < kFrameHeader) {
      damage = "a torn frame header";
      break;
    }
    const uint32_t length = GetU32(rest);
    const uint32_t crc = GetU32(rest.substr(4));
    if (length > kMaxFrame || rest.size() - kFrameHeader < length) {
      damage = absl::StrCat("a torn frame (", length, " bytes announced, ", rest.size() - kFrameHeader, " left)");
      break;
    }
    absl::string_view payload = rest.substr(kFrameHeader, length);
    JobLogEntry entry;
    if (Crc32(payload) != crc || !entry.ParseFromArray(payload.data(), static_cast<int>(length))) {
      damage = "a frame that fails its CRC-32 check";
      break;
    }
    if (entry.generation() == record.generation()) {
      if (absl::Status s = ApplyLogEntry(entry, record); !s.ok()) {
        return absl::DataLossError(absl::StrCat(path, " at byte ", good, ": ", s.message()));
      }
    }
    good += kFrameHeader + length;
    rest.remove_prefix(kFrameHeader + length);
  }
  if (!damage.empty()) {
    // A crash mid-append: what follows the last whole frame was never acknowledged.
    LOG(WARNING) << path << ": " << damage << " at byte " << good << " of " << bytes->size()
                 << "; cutting the log back to its last whole frame";
    if (::truncate(path.c_str(), static_cast<off_t>(good)) != 0) {
      return ErrnoError("cannot truncate", path, errno);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<JobRecord>> JobStore::LoadAll(std::vector<SetAside>* set_aside) {
  const std::string jobs_dir = state_dir_ + "/jobs";
  if (::access(jobs_dir.c_str(), F_OK) != 0) {
    if (errno == ENOENT) return std::vector<JobRecord>{};
    return ErrnoError("cannot list", jobs_dir, errno);
  }
  std::vector<JobRecord> records;
  for (const std::string& name : ListDirectory(jobs_dir)) {
    if (name.rfind(".deleting-", 0) == 0) {  // A deletion a crash interrupted.
      if (absl::Status s = RemoveTree(absl::StrCat(jobs_dir, "/", name)); !s.ok()) LOG(WARNING) << s;
      continue;
    }
    const std::string path = absl::StrCat(jobs_dir, "/", name, "/job.pb");
    absl::StatusOr<std::string> bytes = ReadFile(path);
    if (!bytes.ok() && bytes.status().code() == absl::StatusCode::kNotFound) continue;  // Not a job dir.
    absl::StatusOr<JobRecord> record =
        bytes.ok() ? DecodeJobRecord(*bytes, path) : absl::StatusOr<JobRecord>(bytes.status());
    if (record.ok()) {
      if (absl::Status s = Replay(name, *record); !s.ok()) record = s;
    }
    if (record.ok() && record->job().id() != name) {
      record = absl::DataLossError(absl::StrCat(path, ": holds job '", record->job().id(), "', not '", name, "'"));
    }
    if (!record.ok()) {
      // One damaged job must not keep the coordinator (and every other job) down: move
      // it out of jobs/, untouched, for a person to look at.
      DDLM_RETURN_IF_ERROR(MakeDir(state_dir_ + "/damaged"));
      const std::string to = absl::StrCat(state_dir_, "/damaged/", name, "-", ::time(nullptr));
      if (::rename(absl::StrCat(jobs_dir, "/", name).c_str(), to.c_str()) != 0) {
        return ErrnoError(
            absl::StrCat("cannot set aside damaged job record (", record.status().message(), ") by renaming it to"), to,
            errno);
      }
      SyncDir(jobs_dir);
      const std::string report =
          absl::StrCat(record.status().message(), "; set aside as ", to, " (the other jobs load)");
      LOG(ERROR) << report;
      if (set_aside != nullptr) set_aside->push_back({name, report});
      continue;
    }
    RemoveLeftovers(*record);
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

void JobStore::RemoveLeftovers(const JobRecord& record) {
  const std::string dir = JobDir(record.job().id());
  auto remove = [](const std::string& path, const char* what) {
    if (::unlink(path.c_str()) == 0) {
      LOG(INFO) << "removed " << what << " " << path;
    } else {
      LOG(WARNING) << "cannot remove " << what << " " << path << ": " << std::strerror(errno);
    }
  };
  // Temporary files of atomic writes that a crash interrupted.
  for (const std::string& name : ListDirectory(dir)) {
    if (name.find(".tmp.") != std::string::npos) remove(dir + "/" + name, "a leftover temporary file");
  }
  // In checkpoints/: uploads staged but never kept (.partial), temporary files, and
  // files the record no longer names (retention deletes after the record is saved, so
  // a crash in between leaves the file behind).
  std::set<std::string> kept;
  for (const CheckpointInfo& c : record.checkpoints()) kept.insert(c.id() + ".ckpt");
  const std::string checkpoints = dir + "/checkpoints";
  for (const std::string& name : ListDirectory(checkpoints)) {
    if (kept.count(name)) continue;
    remove(checkpoints + "/" + name,
           name.find(".partial") != std::string::npos || name.find(".tmp.") != std::string::npos
               ? "an unfinished checkpoint upload"
               : "a checkpoint file the job no longer keeps");
  }
}

int64_t JobNumber(const std::string& job_id) {
  int64_t number = 0;
  if (job_id.rfind("job-", 0) == 0 && absl::SimpleAtoi(absl::string_view(job_id).substr(4), &number)) {
    return number;
  }
  return 0;
}

int64_t JobStore::LastDeletedJobNumber() const {
  absl::StatusOr<std::string> bytes = ReadFile(state_dir_ + "/last_deleted_job");
  int64_t number = 0;
  if (bytes.ok() && absl::SimpleAtoi(absl::StripAsciiWhitespace(*bytes), &number)) return number;
  return 0;
}

absl::Status JobStore::DeleteJob(const std::string& job_id) {
  if (const int64_t number = JobNumber(job_id); number > LastDeletedJobNumber()) {
    DDLM_RETURN_IF_ERROR(WriteFileAtomically(state_dir_ + "/last_deleted_job", absl::StrCat(number, "\n")));
  }
  Close(job_id);
  const std::string from = JobDir(job_id);
  const std::string to = absl::StrCat(state_dir_, "/jobs/.deleting-", job_id);
  if (::rename(from.c_str(), to.c_str()) != 0) return ErrnoError("cannot remove", from, errno);
  SyncDir(state_dir_ + "/jobs");
  if (absl::Status s = RemoveTree(to); !s.ok()) LOG(WARNING) << s << " (removed at next start)";
  return absl::OkStatus();
}

std::string JobStore::CheckpointPath(const std::string& job_id, const std::string& checkpoint_id) const {
  return absl::StrCat(JobDir(job_id), "/checkpoints/", checkpoint_id, ".ckpt");
}

absl::Status JobStore::WriteCheckpoint(const std::string& job_id, const std::string& checkpoint_id,
                                       absl::string_view bytes) {
  if (absl::Status s = MakeDir(JobDir(job_id)); !s.ok()) return s;
  if (absl::Status s = MakeDir(JobDir(job_id) + "/checkpoints"); !s.ok()) return s;
  return WriteFileAtomically(CheckpointPath(job_id, checkpoint_id), bytes);
}

absl::StatusOr<int> JobStore::CreateCheckpointFile(const std::string& job_id, const std::string& checkpoint_id) {
  if (absl::Status s = MakeDir(JobDir(job_id)); !s.ok()) return s;
  if (absl::Status s = MakeDir(JobDir(job_id) + "/checkpoints"); !s.ok()) return s;
  const std::string path = CheckpointPath(job_id, checkpoint_id);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("cannot create", path, errno);
  return fd;
}

absl::Status JobStore::RenameCheckpoint(const std::string& job_id, const std::string& from, const std::string& to) {
  const std::string a = CheckpointPath(job_id, from);
  const std::string b = CheckpointPath(job_id, to);
  if (std::rename(a.c_str(), b.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename ", a, " to ", b, ": ", std::strerror(errno)));
  }
  SyncDir(JobDir(job_id) + "/checkpoints");
  return absl::OkStatus();
}

absl::StatusOr<bool> JobStore::LinkCheckpoint(const std::string& job_id, const std::string& checkpoint_id,
                                              const std::string& link) {
  const std::string from = CheckpointPath(job_id, checkpoint_id);
  const std::string to = CheckpointPath(job_id, link);
  int rc = ::link(from.c_str(), to.c_str());
  if (rc != 0 && errno == EEXIST) {  // A leftover of an upload that a crash interrupted.
    ::unlink(to.c_str());
    rc = ::link(from.c_str(), to.c_str());
  }
  if (rc != 0) {
    if (errno == ENOENT) return false;
    return ErrnoError("cannot link", absl::StrCat(from, " as ", to), errno);
  }
  return true;
}

absl::Status JobStore::DeleteCheckpoint(const std::string& job_id, const std::string& checkpoint_id) {
  const std::string path = CheckpointPath(job_id, checkpoint_id);
  if (std::remove(path.c_str()) != 0 && errno != ENOENT) {
    return absl::InternalError(absl::StrCat("cannot delete ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace ddlm
