#include "coordinator/record_writer.h"

#include <glog/logging.h>

#include <set>
#include <utility>

namespace ddlm {
namespace {

// Failed batches remembered for late flushers.
constexpr size_t kFailuresKept = 64;

}  // namespace

uint64_t JobRecordWriter::Append(const std::string& job_id, JobLogEntry entry) {
  absl::MutexLock lock(&mu_);
  Op& op = queue_.emplace_back();
  op.ticket = next_ticket_++;
  op.job_id = job_id;
  op.entry = std::move(entry);
  return op.ticket;
}

uint64_t JobRecordWriter::Snapshot(JobRecord record) {
  absl::MutexLock lock(&mu_);
  Op& op = queue_.emplace_back();
  op.ticket = next_ticket_++;
  op.job_id = record.job().id();
  op.snapshot = std::move(record);
  return op.ticket;
}

absl::Status JobRecordWriter::WriteBatch(std::deque<Op>& batch, std::map<std::string, absl::Status>* failed) {
  if (before_write_) before_write_();
  absl::Status first;
  std::set<std::string> appended;
  for (Op& op : batch) {
    absl::Status s = op.snapshot ? store_->WriteSnapshot(*op.snapshot) : store_->AppendLog(op.job_id, *op.entry);
    if (!s.ok()) {
      LOG(ERROR) << "cannot persist job " << op.job_id << ": " << s;
      failed->emplace(op.job_id, s);
      if (first.ok()) first = s;
    } else if (!op.snapshot) {
      appended.insert(op.job_id);
    }
  }
  if (absl::Status s = store_->SyncLogs(); !s.ok()) {
    LOG(ERROR) << s;
    for (const std::string& id : appended) failed->emplace(id, s);
    if (first.ok()) first = s;
  }
  return first;
}

std::map<std::string, absl::Status> JobRecordWriter::TakeFailedJobs() {
  absl::MutexLock lock(&mu_);
  return std::exchange(failed_jobs_, {});
}

absl::Status JobRecordWriter::Flush(uint64_t ticket) {
  absl::MutexLock lock(&mu_);
  while (durable_ < ticket) {
    if (writing_) {
      // Another flusher is writing; the next batch (which may hold this ticket) is
      // written by whoever wakes first.
      auto done = [this, ticket]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return durable_ >= ticket || !writing_; };
      mu_.Await(absl::Condition(&done));
      continue;
    }
    std::deque<Op> batch;
    batch.swap(queue_);
    if (batch.empty()) break;  // Cannot happen for a ticket that was handed out.
    writing_ = true;
    const uint64_t first = batch.front().ticket, last = batch.back().ticket;
    mu_.Unlock();
    std::map<std::string, absl::Status> failed;
    absl::Status s = WriteBatch(batch, &failed);
    mu_.Lock();
    failed_jobs_.insert(failed.begin(), failed.end());
    writing_ = false;
    writes_ += static_cast<int64_t>(batch.size());
    ++syncs_;
    durable_ = last;
    if (!s.ok()) {
      failures_.push_back({first, last, s});
      if (failures_.size() > kFailuresKept) failures_.pop_front();
    }
  }
  for (const Failure& f : failures_) {
    if (f.first <= ticket && ticket <= f.last) return f.status;
  }
  return absl::OkStatus();
}

int64_t JobRecordWriter::writes() {
  absl::MutexLock lock(&mu_);
  return writes_;
}

int64_t JobRecordWriter::syncs() {
  absl::MutexLock lock(&mu_);
  return syncs_;
}

}  // namespace ddlm
