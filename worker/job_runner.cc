#include "worker/job_runner.h"

#include <glog/logging.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/batching.h"
#include "common/checkpoint.h"
#include "common/corpus.h"
#include "common/device.h"
#include "common/sharding.h"
#include "common/status_macros.h"
#include "common/threading.h"
#include "common/trainer.h"
#include "worker/gradient_reducer.h"
#include "worker/rank_state.h"

namespace ddlm {

JobRunner::JobRunner(Assignment assignment, WorkerRef worker, CoordinatorClient* client,
                     JobRunnerOptions options, CollectiveFactory collective_factory)
    : assignment_(std::move(assignment)),
      worker_(std::move(worker)),
      client_(client),
      options_(std::move(options)),
      collective_factory_(std::move(collective_factory)) {}

JobRunner::~JobRunner() = default;

std::string JobRunner::Who() const {
  return absl::StrCat("[", assignment_.attempt().job_id(), " attempt ",
                      assignment_.attempt().attempt(), " rank ", assignment_.attempt().rank(), "/",
                      assignment_.world_size(), " ", worker_.worker_id(), "#",
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
  return absl::FailedPreconditionError(absl::StrCat(
      "a job's workers must all train on the same kind of device, but this attempt mixes them (",
      absl::StrJoin(kinds, ", "), ")"));
}

absl::Status JobRunner::RunAttempt() {
  const JobSpec& spec = assignment_.spec();
  const AttemptRef& attempt = assignment_.attempt();
  const int rank = attempt.rank();
  const int world = assignment_.world_size();
  ConfigureThreads(spec.schedule().threads());

  // ---- Data: this rank's slices, from the coordinator.
  std::vector<int64_t> splits[3];
  for (int split = TRAIN; split <= TEST; ++split) {
    DownloadShardRequest request;
    *request.mutable_worker() = worker_;
    *request.mutable_attempt() = attempt;
    request.set_split(static_cast<Split>(split));
    DDLM_ASSIGN_OR_RETURN(std::string bytes, client_->DownloadShard(request));
    DDLM_ASSIGN_OR_RETURN(splits[split - TRAIN], DecodeTokenIds(bytes));
  }
  torch::Tensor train = Batchify(splits[0], spec.data().batch_size());
  torch::Tensor valid = Batchify(splits[1], spec.data().eval_batch_size());
  torch::Tensor test = Batchify(splits[2], spec.data().eval_batch_size());
  DDLM_RETURN_IF_ERROR(CheckHasBatches(train, "train shard"));
  DDLM_RETURN_IF_ERROR(CheckHasBatches(valid, "valid shard"));
  DDLM_RETURN_IF_ERROR(CheckHasBatches(test, "test shard"));

  // ---- Model: identical initial weights on every rank (same seed); then each rank
  // its own generator stream for dropout.
  std::vector<std::string> words(assignment_.vocabulary().begin(), assignment_.vocabulary().end());
  const Dictionary dictionary = Dictionary::FromWords(words);
  const torch::Device device = options_.device;
  CoordinatorKeyValueStore store(client_, worker_);
  DDLM_RETURN_IF_ERROR(AgreeOnDeviceKind(store, DeviceKind(device)));
  DDLM_ASSIGN_OR_RETURN(std::unique_ptr<Trainer> trainer, Trainer::Create(spec, dictionary, device));
  if (rank > 0) torch::manual_seed(spec.schedule().seed() + 7919 * static_cast<uint64_t>(rank));

  auto download = [&](const std::string& id) -> absl::StatusOr<Checkpoint> {
    DownloadCheckpointRequest request;
    *request.mutable_worker() = worker_;
    request.set_job_id(attempt.job_id());
    request.set_checkpoint_id(id);
    DDLM_ASSIGN_OR_RETURN(std::string bytes, client_->DownloadCheckpoint(request));
    return ParseCheckpoint(bytes, absl::StrCat("checkpoint ", id));
  };
  if (!assignment_.resume_checkpoint_id().empty()) {
    DDLM_ASSIGN_OR_RETURN(Checkpoint checkpoint, download(assignment_.resume_checkpoint_id()));
    absl::StatusOr<Checkpoint> mine = CheckpointForRank(checkpoint, rank);
    if (!mine.ok() && checkpoint.header.position().batch() == 0) {
      // The job now has more workers than wrote it: this rank starts with its own
      // freshly seeded generator.
      mine = CheckpointForNewRank(std::move(checkpoint), device);
    }
    DDLM_ASSIGN_OR_RETURN(checkpoint, std::move(mine));
    DDLM_RETURN_IF_ERROR(trainer->LoadCheckpoint(checkpoint, /*weights_only=*/false));
    // The coordinator's copy of the job may train longer than the checkpoint's spec.
    LOG(INFO) << Who() << "resumed from " << assignment_.resume_checkpoint_id() << " at epoch "
              << trainer->position().epoch() << ", batch " << trainer->position().batch();
  }

  // ---- Collective.
  CollectiveOptions collective_options;
  collective_options.rank = rank;
  collective_options.world_size = world;
  collective_options.store_prefix = assignment_.store_prefix();
  collective_options.host = options_.host;
  collective_options.timeout = options_.collective_timeout;
  DDLM_ASSIGN_OR_RETURN(std::unique_ptr<Collective> owned_collective,
                        collective_factory_(collective_options, &store));
  Collective& collective = *owned_collective;
  GradientAllReducer reducer(&collective, GradientAllReducer::kDefaultBucketBytes, &stop_requested_);
  DDLM_RETURN_IF_ERROR(reducer.set_wire_dtype(
      spec.schedule().allreduce_dtype() == BF16 ? torch::kBFloat16 : torch::kFloat32));
  if (spec.schedule().allreduce_touched_rows()) {
    DDLM_RETURN_IF_ERROR(
        reducer.set_row_sparse_gradients(trainer->model().RowSparseGradientParameters()));
  }
  // All-reduce buckets while backward runs. The hooks this installs on the model's
  // parameters refer to `reducer`: no backward pass may run after it is gone.
  DDLM_RETURN_IF_ERROR(reducer.Attach(trainer->model().parameters()));
  LOG(INFO) << Who() << "connected on " << DescribeDevice(device) << " ("
            << Precision_Name(spec.schedule().precision()) << ", all-reduce in "
            << Precision_Name(spec.schedule().allreduce_dtype())
            << (spec.schedule().allreduce_touched_rows() ? ", touched embedding rows only" : "")
            << "); " << trainer->num_parameters()
            << " parameters, "
            << train.size(0) << " rows x " << train.size(1) << " columns of training data";

  trainer->set_gradient_reducer(
      [&](const std::vector<torch::Tensor>& grads) { return reducer.Reduce(grads); });
  // All-reduce time so far, read between steps (Reduce has returned, so the
  // communication thread is not writing the stats).
  double allreduce_seconds_reported = 0;
  trainer->set_interval_callback([&](const IntervalReport& report) {
    ReportMetricsRequest request;
    *request.mutable_worker() = worker_;
    *request.mutable_attempt() = attempt;
    TrainingMetrics& m = *request.mutable_metrics();
    m.set_epoch(report.epoch);
    m.set_batch(report.batch);
    m.set_num_batches(report.num_batches);
    m.set_lr(report.lr);
    m.set_loss(report.loss);
    m.set_ppl(std::exp(report.loss));
    m.set_tokens_per_second(report.tokens_per_second);
    m.set_ms_per_batch(report.ms_per_batch);
    const double allreduce_seconds = reducer.stats().allreduce_seconds;
    if (report.batches > 0) {
      m.set_allreduce_ms_per_batch((allreduce_seconds - allreduce_seconds_reported) * 1000.0 /
                                   static_cast<double>(report.batches));
    }
    allreduce_seconds_reported = allreduce_seconds;
    request.set_global_step(trainer->position().global_step());
    if (absl::Status s = client_->ReportMetrics(request); !s.ok()) {
      LOG(WARNING) << Who() << "metrics not delivered: " << s;
    }
    if (rank == 0) {
      LOG(INFO) << Who() << absl::StrFormat("| epoch %3d | %5d/%5d batches | lr %.2f | ms/batch %.1f | loss %.2f | ppl %.2f",
                                            report.epoch, report.batch, report.num_batches, report.lr,
                                            report.ms_per_batch, report.loss, std::exp(report.loss));
    }
  });

  // Every rank takes part (the gather is a collective); rank 0 uploads.
  auto checkpoint = [&]() -> absl::Status {
    DDLM_ASSIGN_OR_RETURN(Checkpoint c, trainer->MakeCheckpoint());
    DDLM_RETURN_IF_ERROR(GatherRankState(collective, &c));
    if (rank != 0) return absl::OkStatus();
    DDLM_ASSIGN_OR_RETURN(std::string bytes, SerializeCheckpoint(c));
    DDLM_ASSIGN_OR_RETURN(CheckpointInfo info, client_->UploadCheckpoint(worker_, attempt, bytes));
    LOG(INFO) << Who() << "checkpoint " << info.id() << " kept (" << info.size_bytes() << " bytes)";
    return absl::OkStatus();
  };
  const int64_t every = spec.checkpoint().every_n_steps();
  trainer->set_step_callback([&](const Trainer& t) -> absl::Status {
    if (every > 0 && t.position().global_step() % every == 0 && !reducer.stop_agreed()->load()) {
      return checkpoint();
    }
    return absl::OkStatus();
  });

  // ---- Epochs.
  std::vector<torch::Tensor> best_weights;
  auto keep_best = [&]() {
    best_weights.clear();
    for (const torch::Tensor& p : trainer->model().parameters()) best_weights.push_back(p.detach().clone());
  };
  auto evaluate = [&](Split split, const torch::Tensor& data, int32_t epoch,
                      double seconds) -> absl::StatusOr<EvaluationDecision> {
    DDLM_ASSIGN_OR_RETURN(EvalResult result,
                          trainer->Evaluate(data, spec.schedule().dry_run() ? 1 : 0));
    ReportEvaluationRequest request;
    *request.mutable_worker() = worker_;
    *request.mutable_attempt() = attempt;
    request.set_split(split);
    request.set_epoch(epoch);
    request.set_loss_sum(result.loss_sum);
    request.set_tokens(result.tokens);
    request.set_seconds(seconds);
    const absl::Time deadline = absl::Now() + options_.evaluation_timeout;
    for (;;) {
      const absl::Duration poll = std::min(deadline - absl::Now(), options_.evaluation_poll);
      absl::StatusOr<EvaluationDecision> decision = client_->ReportEvaluation(request, poll);
      if (decision.status().code() != absl::StatusCode::kDeadlineExceeded || absl::Now() >= deadline) {
        return decision;
      }
      if (stop_requested_) {
        return absl::CancelledError(absl::StrCat("stopped while waiting for every rank's ",
                                                 split == VALID ? "validation" : "test", " loss"));
      }
    }
  };
  // A checkpoint taken at an epoch end whose validation was the best holds the best
  // weights (resumed jobs start with them).
  if (!assignment_.resume_checkpoint_id().empty() && trainer->position().batch() == 0 &&
      assignment_.best_checkpoint_id() == assignment_.resume_checkpoint_id()) {
    keep_best();
  }
  const int32_t epochs = spec.schedule().epochs();
  while (trainer->position().epoch() <= epochs) {
    const int32_t epoch = trainer->position().epoch();
    const auto start = std::chrono::steady_clock::now();
    DDLM_ASSIGN_OR_RETURN(EpochSummary summary, trainer->TrainEpoch(train, reducer.stop_agreed()));
    if (summary.interrupted) {
      return absl::CancelledError(absl::StrCat("stopped at epoch ", epoch, ", batch ",
                                               trainer->position().batch()));
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    DDLM_ASSIGN_OR_RETURN(EvaluationDecision decision, evaluate(VALID, valid, epoch, seconds));
    // The coordinator decided (best, learning rate) for every rank; the trainer applies it.
    trainer->ApplyValidation(decision.loss(), ValidationOutcome{decision.best(), decision.lr()});
    if (decision.best()) keep_best();
    const ReducerStats& stats = reducer.stats();
    LOG(INFO) << Who()
              << absl::StrFormat("| end of epoch %3d | time: %5.2fs | valid loss %5.2f | valid ppl %8.2f | "
                                 "all-reduce %.1f s, %d bucket(s)",
                                 epoch, seconds, decision.loss(), std::exp(decision.loss()),
                                 stats.allreduce_seconds, reducer.num_buckets());
    DDLM_RETURN_IF_ERROR(checkpoint());
  }

  // ---- Test with the best weights.
  if (best_weights.empty() && !assignment_.best_checkpoint_id().empty()) {
    DDLM_ASSIGN_OR_RETURN(Checkpoint best, download(assignment_.best_checkpoint_id()));
    DDLM_RETURN_IF_ERROR(trainer->LoadCheckpoint(best, /*weights_only=*/true));
  } else if (!best_weights.empty()) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> params = trainer->model().parameters();
    for (size_t i = 0; i < params.size(); ++i) params[i].copy_(best_weights[i]);
  }
  DDLM_ASSIGN_OR_RETURN(EvaluationDecision tested, evaluate(TEST, test, epochs, 0));
  LOG(INFO) << Who() << absl::StrFormat("| End of training | test loss %5.2f | test ppl %8.2f",
                                        tested.loss(), std::exp(tested.loss()));
  return absl::OkStatus();
}

}  // namespace ddlm
