#ifndef DDLM_COORDINATOR_TENSORBOARD_TENSORBOARD_EXPORTER_H_
#define DDLM_COORDINATOR_TENSORBOARD_TENSORBOARD_EXPORTER_H_

// Writes every job's scalars (job_scalars.h) as TensorBoard event files, one run per job:
// <root>/<job id>/events.out.tfevents.*, so that `tensorboard --logdir <root>` shows each
// job as a run named by its id.
//
// A run's file is open while its job runs, and closed when the job ends (SUCCEEDED,
// FAILED, CANCELLED); a resumed job's scalars go on in a new file of the same run. A
// deleted job's run is removed.
//
// Threading: OnJobEvent only queues (the Coordinator calls it with its mutex held); one
// thread of the exporter's own writes the files. Thread-safe. A write that fails is
// logged and counted, and the job's later events go to a new file.

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/job_event_observer.h"
#include "coordinator/tensorboard/event_file_writer.h"
#include "coordinator/tensorboard/job_scalars.h"

namespace ddlm {

class TensorBoardExporter : public JobEventObserver {
 public:
  // Events waiting to be written beyond this are dropped (and counted).
  static constexpr size_t kMaxQueued = 100000;

  TensorBoardExporter(std::string root, std::string host);
  // Writes what is queued, then stops.
  ~TensorBoardExporter() override;

  void OnJobEvent(const Job& job, const JobEvent& event) override ABSL_LOCKS_EXCLUDED(mu_);
  void OnJobDeleted(const std::string& job_id) override ABSL_LOCKS_EXCLUDED(mu_);

  // Returns once everything queued before the call is written.
  void WaitUntilWritten() ABSL_LOCKS_EXCLUDED(mu_);

  const std::string& root() const { return root_; }
  int64_t dropped() ABSL_LOCKS_EXCLUDED(mu_);
  int64_t failed_writes() ABSL_LOCKS_EXCLUDED(mu_);
  // Runs with a file open (tests).
  int open_runs() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Queued {
    std::string job_id;
    JobEvent event;
    // Where the job stood (for a run picked up midway): Job.last_training's batches per
    // epoch, Job.global_step.
    int64_t batches_per_epoch = 0;
    int64_t global_step = 0;
    bool deleted = false;  // Remove the job's run instead.
  };
  struct Run {
    JobScalars scalars;
    std::unique_ptr<EventFileWriter> file;
  };
  void WriteLoop();
  void Write(const Queued& item);  // On the writer thread only.

  const std::string root_;
  const std::string host_;
  absl::Mutex mu_;
  std::deque<Queued> queue_ ABSL_GUARDED_BY(mu_);
  int64_t enqueued_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t written_ ABSL_GUARDED_BY(mu_) = 0;  // Taken off the queue and handled.
  int64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t failed_writes_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int open_runs_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, Run> runs_;  // Running jobs'; the writer thread's alone.
  std::thread writer_;
};

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_TENSORBOARD_TENSORBOARD_EXPORTER_H_
