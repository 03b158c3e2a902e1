#ifndef DDLM_WORKER_JOB_RUNNER_H_
#define DDLM_WORKER_JOB_RUNNER_H_

// Runs one rank of one job attempt to its end, talking to the coordinator through a
// CoordinatorClient and to the other ranks through a Collective:
//
//   download shards (and the checkpoint to resume from) -> connect the collective ->
//   the epoch loop (worker/epoch_loop.h): for each epoch, train (gradients averaged
//   every step, before clipping; metrics each log interval) -> evaluate this rank's
//   validation slice -> the coordinator's combined decision (best? next lr?), which the
//   trainer applies -> rank 0 uploads a checkpoint
//   -> after the last epoch, the best weights on this rank's test slice.
//
// A failed attempt (out of GPU memory, say) returns its error and gives the GPU memory
// LibTorch cached back, so that the worker can run the next job.
//
// With checkpoint.every_n_steps, rank 0 also uploads a checkpoint every that many
// steps. RequestStop (from the command thread, on a cancel) makes every rank leave
// training after the same step (see GradientAllReducer); Run then returns CANCELLED.
//
// Threading: Run on one thread; RequestStop from any thread.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/base/token_file.h"
#include "proto/worker_service.pb.h"
#include "torch/torch.h"
#include "worker/attempt_runner.h"
#include "worker/collectives/collective.h"
#include "worker/coordinator_client.h"
#include "worker/epoch_loop.h"
#include "worker/shard_store.h"

namespace ddlm {

using CollectiveFactory =
    std::function<absl::StatusOr<std::unique_ptr<Collective>>(const CollectiveOptions& options, KeyValueStore* store)>;

struct JobRunnerOptions {
  // Where this rank trains (ResolveDevice's, parsed once by ddlm_worker). Every rank of
  // an attempt must be on the same kind of device: Run fails with FAILED_PRECONDITION
  // naming each rank's otherwise.
  torch::Device device = torch::kCPU;
  // The address other ranks reach this one on (the collective listens there).
  std::string host = "127.0.0.1";
  absl::Duration collective_timeout = absl::Minutes(5);
  // How long a rank waits at an epoch end for the slowest rank...
  absl::Duration evaluation_timeout = absl::Hours(2);
  // ...asking again this often (harmless), so that a stop or a coordinator that stopped
  // answering is noticed within one poll rather than after evaluation_timeout.
  absl::Duration evaluation_poll = absl::Seconds(30);
  // Where shards are kept on disk and mapped (worker/shard_store.h); a shard already
  // there is not downloaded again. Null: shards are held in memory. Shared by the
  // worker's attempts, so that one opened by the last attempt is not read again.
  std::shared_ptr<ShardStore> shard_store;
};

class JobRunner : public AttemptRunner {
 public:
  JobRunner(Assignment assignment, WorkerRef worker, CoordinatorClient* client /* not owned */,
            JobRunnerOptions options, CollectiveFactory collective_factory);
  ~JobRunner() override;

  absl::Status Run() override;
  void RequestStop() override;
  const AttemptRef& attempt() const override { return assignment_.attempt(); }

 private:
  // This rank's batched slices of the corpus: in memory, or views of the mapped files
  // of a ShardStore (then `files` keeps them mapped; ReleasePages lets their read
  // pages go, so that a walk over a shard larger than memory stays small).
  struct Shards {
    torch::Tensor train, valid, test;
    std::vector<std::shared_ptr<const TokenFile>> files;
    void ReleasePages() const;
  };

  std::string Who() const;
  // Download -> restore -> connect -> epochs (EpochLoop) -> test.
  absl::Status RunAttempt();
  // This rank's shards, from the coordinator (or options.shard_dir), batched.
  absl::StatusOr<Shards> DownloadShards();
  // A kept checkpoint of the job, by id.
  absl::StatusOr<Checkpoint> DownloadCheckpoint(const std::string& id);
  // Continues from the assignment's resume checkpoint, if it names one.
  absl::Status Restore(Trainer& trainer);
  // Every rank publishes its device kind in the store and checks the others'.
  absl::Status AgreeOnDeviceKind(KeyValueStore& store, const std::string& kind);
  // Every rank takes part (the gather is a collective); rank 0 uploads.
  absl::Status UploadCheckpoint(const Trainer& trainer, Collective& collective);
  // Sends the coordinator the training metrics of one log interval.
  void ReportInterval(const IntervalReport& report, const Trainer& trainer, double allreduce_ms_per_batch);

  const Assignment assignment_;
  const WorkerRef worker_;
  CoordinatorClient* const client_;
  const JobRunnerOptions options_;
  const CollectiveFactory collective_factory_;
  // Read by the training thread's GradientAllReducer; set by RequestStop.
  std::atomic<bool> stop_requested_{false};
};

}  // namespace ddlm

#endif  // DDLM_WORKER_JOB_RUNNER_H_
