#include "coordinator/tensorboard/tensorboard_exporter.h"

#include <utility>

#include "common/base/file_io.h"
#include "glog/logging.h"

namespace ddlm {

TensorBoardExporter::TensorBoardExporter(std::string root, std::string host)
    : root_(std::move(root)), host_(std::move(host)) {
  writer_ = std::thread([this] { WriteLoop(); });
}

TensorBoardExporter::~TensorBoardExporter() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  writer_.join();
}

namespace {

bool Ends(const JobEvent& event) {
  if (!event.has_state()) return false;
  const JobState s = event.state().state();
  return s == SUCCEEDED || s == FAILED || s == CANCELLED;
}

}  // namespace

void TensorBoardExporter::OnJobEvent(const Job& job, const JobEvent& event) {
  if (event.event_case() == JobEvent::kCheckpoint || (event.has_state() && !Ends(event))) return;
  absl::MutexLock lock(&mu_);
  // A job's end always gets through, so that its file is closed.
  if (queue_.size() >= kMaxQueued && !Ends(event)) {
    if (dropped_++ == 0) LOG(WARNING) << "TensorBoard export is behind; dropping events";
    return;
  }
  queue_.push_back({job.id(), event, job.last_training().num_batches(), job.global_step()});
  ++enqueued_;
}

void TensorBoardExporter::OnJobDeleted(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  Queued deleted;
  deleted.job_id = job_id;
  deleted.deleted = true;
  queue_.push_back(std::move(deleted));  // Never dropped, as a job's end is not.
  ++enqueued_;
}

int TensorBoardExporter::open_runs() {
  absl::MutexLock lock(&mu_);
  return open_runs_;
}

void TensorBoardExporter::WaitUntilWritten() {
  absl::MutexLock lock(&mu_);
  const int64_t target = enqueued_;
  auto written = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return written_ >= target; };
  mu_.Await(absl::Condition(&written));
}

int64_t TensorBoardExporter::dropped() {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

int64_t TensorBoardExporter::failed_writes() {
  absl::MutexLock lock(&mu_);
  return failed_writes_;
}

void TensorBoardExporter::WriteLoop() {
  while (true) {
    Queued item;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // Stopping, and everything is written.
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    Write(item);
    absl::MutexLock lock(&mu_);
    ++written_;
  }
}

void TensorBoardExporter::Write(const Queued& item) {
  if (item.deleted) {
    runs_.erase(item.job_id);
    {
      absl::MutexLock lock(&mu_);
      open_runs_ = static_cast<int>(runs_.size());
    }
    if (absl::Status s = RemoveTree(root_ + "/" + item.job_id); !s.ok()) {
      LOG(WARNING) << "TensorBoard run of deleted job " << item.job_id << " not removed: " << s;
    }
    return;
  }
  if (Ends(item.event)) {
    if (runs_.erase(item.job_id) > 0) {
      absl::MutexLock lock(&mu_);
      open_runs_ = static_cast<int>(runs_.size());
    }
    return;
  }
  auto [it, added] = runs_.try_emplace(item.job_id);
  Run& run = it->second;
  if (added) {
    run.scalars.Resume(item.batches_per_epoch, item.global_step);
    absl::MutexLock lock(&mu_);
    open_runs_ = static_cast<int>(runs_.size());
  }
  std::optional<ScalarPoint> point = run.scalars.Add(item.event);
  if (!point) return;
  absl::Status status;
  if (run.file == nullptr) {
    absl::StatusOr<std::unique_ptr<EventFileWriter>> file =
        EventFileWriter::Create(root_ + "/" + item.job_id, point->wall_time, host_);
    if (file.ok()) {
      run.file = *std::move(file);
    } else {
      status = file.status();
    }
  }
  if (status.ok()) status = run.file->WriteScalars(point->step, point->wall_time, point->scalars);
  if (!status.ok()) {
    LOG(WARNING) << "TensorBoard scalars of job " << item.job_id << " not written: " << status;
    run.file.reset();  // The next event starts a new file.
    absl::MutexLock lock(&mu_);
    ++failed_writes_;
  }
}

}  // namespace ddlm
