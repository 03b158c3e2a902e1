#include "worker/job_runner.h"

#include <glog/logging.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/base/corpus.h"
#include "common/base/failpoint.h"
#include "common/base/sharding.h"
#include "common/base/status_macros.h"
#include "common/training/batching.h"
#include "common/training/checkpoint.h"
#include "common/training/device.h"
#include "common/training/threading.h"
#include "common/training/trainer.h"
#include "worker/gradient_reducer.h"
#include "worker/rank_state.h"
#include "worker/shard_store.h"

namespace ddlm {

JobRunner::JobRunner(Assignment assignment, WorkerRef worker, CoordinatorClient* client, JobRunnerOptions options,
                     CollectiveFactory collective_factory)
    : assignment_(std::move(assignment)),
      worker_(std::move(worker)),
      client_(client),
      options_(std::move(options)),
      collective_factory_(std::move(collective_factory)) {}

JobRunner::~JobRunner() = default;

std::string JobRunner::Who() const {
  return absl::StrCat("[", assignment_.attempt().job_id(), " attempt ", assignment_.attempt().attempt(), " rank ",
                      assignment_.attempt().rank(), "/", assignment_.world_size(), " ", worker_.worker_id(), "#",
                      worker_.incarnation(), "] ");
}

void JobRunner::RequestStop() { stop_requested_ = true; }

absl::Status JobRunner::Run() {
  absl::Status status = RunAttempt();
  if (!status.ok()) {
    // An attempt that ran out of GPU memory leaves the allocator's cache full: give it
    // back, so that this worker can take the next job.
    ReleaseCachedDeviceMemory();
  }
  return status;
}

absl::Status JobRunner::AgreeOnDeviceKind(KeyValueStore& store, const std::string& kind) {
  const int world = assignment_.world_size();
  if (world == 1) return absl::OkStatus();
  PrefixStore devices(assignment_.store_prefix() + "device/", &store);  // Rank -> device kind.
  DDLM_RETURN_IF_ERROR(devices.Set(absl::StrCat(assignment_.attempt().rank()), kind));
  std::vector<std::string> keys;
  for (int r = 0; r < world; ++r) keys.push_back(absl::StrCat(r));
  DDLM_RETURN_IF_ERROR(devices.Wait(keys, options_.collective_timeout));
  std::vector<std::string> kinds;
  bool mixed = false;
  for (int r = 0; r < world; ++r) {
    DDLM_ASSIGN_OR_RETURN(std::string k, devices.Get(keys[r]));
    mixed = mixed || k != kind;
    kinds.push_back(absl::StrCat("rank ", r, " ", k));
  }
  if (!mixed) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("a job's workers must all train on the same kind of device, but this attempt mixes them (",
                   absl::StrJoin(kinds, ", "), ")"));
}

namespace {

// A job's arbiter: the coordinator combines every rank's evaluation and decides once
// for all of them (coordinator/job_manager.h). A rank asks again every poll (harmless)
// until the decision comes, the evaluation timeout passes, or a stop is requested.
class CoordinatorValidationArbiter : public ValidationArbiter {
 public:
  CoordinatorValidationArbiter(CoordinatorClient* client, const WorkerRef& worker, const AttemptRef& attempt,
                               const JobRunnerOptions& options, const std::atomic<bool>* stop)
      : client_(client), worker_(worker), attempt_(attempt), options_(options), stop_(stop) {}

  absl::StatusOr<EvaluationDecision> Decide(Split split, int32_t epoch, const EvalResult& local,
                                            double train_seconds) override {
    ReportEvaluationRequest request;
    *request.mutable_worker() = worker_;
    *request.mutable_attempt() = attempt_;
    request.set_split(split);
    request.set_epoch(epoch);
    request.set_loss_sum(local.loss_sum);
    request.set_tokens(local.tokens);
    request.set_seconds(train_seconds);
    Failpoint(kFailpointEvaluationBarrier);  // Evaluated; about to wait for every rank's.
    const absl::Time deadline = absl::Now() + options_.evaluation_timeout;
    for (;;) {
      const absl::Duration poll = std::min(deadline - absl::Now(), options_.evaluation_poll);
      absl::StatusOr<EvaluationDecision> decision = client_->ReportEvaluation(request, poll);
      if (decision.status().code() != absl::StatusCode::kDeadlineExceeded || absl::Now() >= deadline) {
        return decision;
      }
      if (*stop_) {
        return absl::CancelledError(
            absl::StrCat("stopped while waiting for every rank's ", split == VALID ? "validation" : "test", " loss"));
      }
    }
  }

 private:
  CoordinatorClient* const client_;
  const WorkerRef& worker_;
  const AttemptRef& attempt_;
  const JobRunnerOptions& options_;
  const std::atomic<bool>* const stop_;
};

}  // namespace

void JobRunner::Shards::ReleasePages() const {
  for (const auto& file : files) file->ReleasePages();
}

absl::StatusOr<JobRunner::Shards> JobRunner::DownloadShards() {
  const JobSpec& spec = assignment_.spec();
  const int64_t batch[3] = {spec.data().batch_size(), spec.data().eval_batch_size(), spec.data().eval_batch_size()};
  const int64_t tokens[3] = {assignment_.train_tokens(), assignment_.valid_tokens(), assignment_.test_tokens()};
  ShardStore* const store = options_.shard_store.get();
  const bool on_disk = store != nullptr && assignment_.shard_ids_size() == 3;
  const int downloads_before = on_disk ? store->downloads() : 0;
  const int reused_before = on_disk ? store->reused() : 0;
  if (on_disk) {
    // Only this attempt's shards stay on the disk.
    absl::Status kept = store->Keep({assignment_.shard_ids().begin(), assignment_.shard_ids().end()});
    if (!kept.ok()) LOG(WARNING) << Who() << "old shards in " << store->dir() << " stay: " << kept;
  }
  Shards shards;
  torch::Tensor* out[3] = {&shards.train, &shards.valid, &shards.test};
  for (int split = TRAIN; split <= TEST; ++split) {
    const int i = split - TRAIN;
    DownloadShardRequest request;
    *request.mutable_worker() = worker_;
    *request.mutable_attempt() = assignment_.attempt();
    request.set_split(static_cast<Split>(split));
    auto download = [&](const std::function<absl::Status(absl::string_view)>& sink) {
      return client_->DownloadShard(request, sink);
    };
    if (on_disk) {
      DDLM_ASSIGN_OR_RETURN(std::shared_ptr<const TokenFile> file,
                            store->Get(assignment_.shard_ids(i), tokens[i],
                                       static_cast<int64_t>(assignment_.vocabulary().size()), download));
      // A view of the mapping: the file stays mapped while any tensor over it lives.
      *out[i] = BatchifyView(MappedIds(file), batch[i]);
      shards.files.push_back(std::move(file));
    } else {
      std::string bytes;
      DDLM_RETURN_IF_ERROR(download([&](absl::string_view chunk) {
        bytes.append(chunk.data(), chunk.size());
        return absl::OkStatus();
      }));
      DDLM_ASSIGN_OR_RETURN(std::vector<int64_t> ids, DecodeTokenIds(bytes));
      *out[i] = Batchify(ids, batch[i]);
    }
  }
  if (on_disk) {
    LOG(INFO) << Who() << "shards in " << store->dir() << ": " << store->downloads() - downloads_before
              << " downloaded, " << store->reused() - reused_before << " already there";
  }
  DDLM_RETURN_IF_ERROR(CheckHasBatches(shards.train, "train shard"));
  DDLM_RETURN_IF_ERROR(CheckHasBatches(shards.valid, "valid shard"));
  DDLM_RETURN_IF_ERROR(CheckHasBatches(shards.test, "test shard"));
  return shards;
}

absl::StatusOr<Checkpoint> JobRunner::DownloadCheckpoint(const std::string& id) {
  DownloadCheckpointRequest request;
  *request.mutable_worker() = worker_;
  request.set_job_id(assignment_.attempt().job_id());
  request.set_checkpoint_id(id);
  DDLM_ASSIGN_OR_RETURN(std::string bytes, client_->DownloadCheckpoint(request));
  return ParseCheckpoint(bytes, absl::StrCat("checkpoint ", id));
}

absl::Status JobRunner::Restore(Trainer& trainer) {
  const std::string& id = assignment_.resume_checkpoint_id();
  if (id.empty()) return absl::OkStatus();
  const int rank = assignment_.attempt().rank();
  DDLM_ASSIGN_OR_RETURN(Checkpoint checkpoint, DownloadCheckpoint(id));
  absl::StatusOr<Checkpoint> mine = CheckpointForRank(checkpoint, rank);
  if (!mine.ok() && checkpoint.header.position().batch() == 0) {
    // The job now has more workers than wrote it: this rank starts with its own
    // freshly seeded generator.
    mine = CheckpointForNewRank(std::move(checkpoint), trainer.device());
  }
  DDLM_ASSIGN_OR_RETURN(checkpoint, std::move(mine));
  DDLM_RETURN_IF_ERROR(trainer.LoadCheckpoint(checkpoint, /*weights_only=*/false));
  // The coordinator's copy of the job may train longer than the checkpoint's spec.
  LOG(INFO) << Who() << "resumed from " << id << " at epoch " << trainer.position().epoch() << ", batch "
            << trainer.position().batch();
  return absl::OkStatus();
}

absl::Status JobRunner::UploadCheckpoint(const Trainer& trainer, Collective& collective) {
  DDLM_ASSIGN_OR_RETURN(Checkpoint c, trainer.MakeCheckpoint());
  DDLM_RETURN_IF_ERROR(GatherRankState(collective, &c));
  if (assignment_.attempt().rank() != 0) return absl::OkStatus();
  DDLM_ASSIGN_OR_RETURN(std::string bytes, SerializeCheckpoint(c));
  DDLM_ASSIGN_OR_RETURN(CheckpointInfo info, client_->UploadCheckpoint(worker_, assignment_.attempt(), bytes));
  LOG(INFO) << Who() << "checkpoint " << info.id() << " kept (" << info.size_bytes() << " bytes)";
  return absl::OkStatus();
}

void JobRunner::ReportInterval(const IntervalReport& report, const Trainer& trainer, double allreduce_ms_per_batch) {
  ReportMetricsRequest request;
  *request.mutable_worker() = worker_;
  *request.mutable_attempt() = assignment_.attempt();
  TrainingMetrics& m = *request.mutable_metrics();
  m.set_epoch(report.epoch);
  m.set_batch(report.batch);
  m.set_num_batches(report.num_batches);
  m.set_lr(report.lr);
  m.set_loss(report.loss);
  m.set_ppl(std::exp(report.loss));
  m.set_tokens_per_second(report.tokens_per_second);
  m.set_ms_per_batch(report.ms_per_batch);
  if (report.batches > 0) m.set_allreduce_ms_per_batch(allreduce_ms_per_batch);
  request.set_global_step(trainer.position().global_step());
  if (absl::Status s = client_->ReportMetrics(request); !s.ok()) {
    LOG(WARNING) << Who() << "metrics not delivered: " << s;
  }
  if (assignment_.attempt().rank() == 0) {
    LOG(INFO) << Who()
              << absl::StrFormat("| epoch %3d | %5d/%5d batches | lr %.2f | ms/batch %.1f | loss %.2f | ppl %.2f",
                                 report.epoch, report.batch, report.num_batches, report.lr, report.ms_per_batch,
                                 report.loss, std::exp(report.loss));
  }
}

absl::Status JobRunner::RunAttempt() {
  const JobSpec& spec = assignment_.spec();
  const AttemptRef& attempt = assignment_.attempt();
  const int rank = attempt.rank();
  const int world = assignment_.world_size();
  ConfigureThreads(spec.schedule().threads());

  // ---- Data: this rank's slices, from the coordinator.
  DDLM_ASSIGN_OR_RETURN(Shards shards, DownloadShards());

  // ---- Model: identical initial weights on every rank (same seed); then each rank
  // its own generator stream for dropout.
  std::vector<std::string> words(assignment_.vocabulary().begin(), assignment_.vocabulary().end());
  const Dictionary dictionary = Dictionary::FromWords(words);
  const torch::Device device = options_.device;
  CoordinatorKeyValueStore store(client_, worker_, &stop_requested_);
  DDLM_RETURN_IF_ERROR(AgreeOnDeviceKind(store, DeviceKind(device)));
  DDLM_ASSIGN_OR_RETURN(std::unique_ptr<Trainer> trainer, Trainer::Create(spec, dictionary, device));
  if (rank > 0) torch::manual_seed(spec.schedule().seed() + 7919 * static_cast<uint64_t>(rank));
  DDLM_RETURN_IF_ERROR(Restore(*trainer));

  // ---- Collective.
  CollectiveOptions collective_options;
  collective_options.rank = rank;
  collective_options.world_size = world;
  collective_options.store_prefix = assignment_.store_prefix();
  collective_options.host = options_.host;
  collective_options.timeout = options_.collective_timeout;
  Failpoint(kFailpointRendezvous);  // The other ranks may be waiting for this one's address.
  DDLM_ASSIGN_OR_RETURN(std::unique_ptr<Collective> owned_collective, collective_factory_(collective_options, &store));
  Collective& collective = *owned_collective;
  GradientAllReducer reducer(&collective, GradientAllReducer::kDefaultBucketBytes, &stop_requested_);
  DDLM_RETURN_IF_ERROR(
      reducer.set_wire_dtype(spec.schedule().allreduce_dtype() == BF16 ? torch::kBFloat16 : torch::kFloat32));
  if (spec.schedule().allreduce_touched_rows()) {
    DDLM_RETURN_IF_ERROR(reducer.set_row_sparse_gradients(trainer->model().RowSparseGradientParameters()));
  }
  // All-reduce buckets while backward runs. The hooks this installs on the model's
  // parameters refer to `reducer`: no backward pass may run after it is gone.
  DDLM_RETURN_IF_ERROR(reducer.Attach(trainer->model().parameters()));
  LOG(INFO) << Who() << "connected on " << DescribeDevice(device) << " (" << Precision_Name(spec.schedule().precision())
            << ", all-reduce in " << Precision_Name(spec.schedule().allreduce_dtype())
            << (spec.schedule().allreduce_touched_rows() ? ", touched embedding rows only" : "") << "); "
            << trainer->num_parameters() << " parameters, " << shards.train.size(0) << " rows x "
            << shards.train.size(1) << " columns of training data";

  trainer->set_gradient_reducer([&](const std::vector<torch::Tensor>& grads) { return reducer.Reduce(grads); });
  // All-reduce time so far, read between steps (Reduce has returned, so the
  // communication thread is not writing the stats).
  double allreduce_seconds_reported = 0;
  trainer->set_interval_callback([&](const IntervalReport& report) {
    const double allreduce_seconds = reducer.stats().allreduce_seconds;
    const double per_batch = report.batches > 0 ? (allreduce_seconds - allreduce_seconds_reported) * 1000.0 /
                                                      static_cast<double>(report.batches)
                                                : 0;
    allreduce_seconds_reported = allreduce_seconds;
    ReportInterval(report, *trainer, per_batch);
    shards.ReleasePages();
  });
  const int64_t every = spec.checkpoint().every_n_steps();
  trainer->set_step_callback([&](const Trainer& t) -> absl::Status {
    Failpoint(kFailpointTrainStep);
    if (every > 0 && t.position().global_step() % every == 0 && !reducer.stop_agreed()->load()) {
      return UploadCheckpoint(t, collective);
    }
    return absl::OkStatus();
  });

  // ---- Epochs: the coordinator decides after each validation; rank 0 uploads a
  // checkpoint at every epoch end.
  CoordinatorValidationArbiter arbiter(client_, worker_, attempt, options_, &stop_requested_);
  EpochLoopOptions loop_options;
  loop_options.eval_batches = spec.schedule().dry_run() ? 1 : 0;
  loop_options.stop = reducer.stop_agreed();
  loop_options.on_epoch_end = [&](const EpochEnd& end) -> absl::Status {
    LOG(INFO) << Who()
              << absl::StrFormat(
                     "| end of epoch %3d | time: %5.2fs | valid loss %5.2f | valid ppl %8.2f | "
                     "all-reduce %.1f s, %d bucket(s)",
                     end.epoch, end.train_seconds, end.decision.loss(), std::exp(end.decision.loss()),
                     reducer.stats().allreduce_seconds, reducer.num_buckets());
    shards.ReleasePages();
    return UploadCheckpoint(*trainer, collective);
  };
  EpochLoop loop(trainer.get(), &arbiter, loop_options);
  // A checkpoint taken at an epoch end whose validation was the best holds the best
  // weights (resumed jobs start with them).
  if (!assignment_.resume_checkpoint_id().empty() && trainer->position().batch() == 0 &&
      assignment_.best_checkpoint_id() == assignment_.resume_checkpoint_id()) {
    loop.KeepCurrentAsBest();
  }
  DDLM_ASSIGN_OR_RETURN(const bool finished, loop.Train(shards.train, shards.valid));
  if (!finished) {
    return absl::CancelledError(
        absl::StrCat("stopped at epoch ", trainer->position().epoch(), ", batch ", trainer->position().batch()));
  }

  // ---- Test with the best weights: kept in memory, else the job's best checkpoint.
  if (!loop.RestoreBest() && !assignment_.best_checkpoint_id().empty()) {
    DDLM_ASSIGN_OR_RETURN(Checkpoint best, DownloadCheckpoint(assignment_.best_checkpoint_id()));
    DDLM_RETURN_IF_ERROR(trainer->LoadCheckpoint(best, /*weights_only=*/true));
  }
  Failpoint(kFailpointTestPass);
  DDLM_ASSIGN_OR_RETURN(EvaluationDecision tested, loop.Test(shards.test, spec.schedule().epochs()));
  LOG(INFO) << Who()
            << absl::StrFormat("| End of training | test loss %5.2f | test ppl %8.2f", tested.loss(),
                               std::exp(tested.loss()));
  return absl::OkStatus();
}

}  // namespace ddlm
