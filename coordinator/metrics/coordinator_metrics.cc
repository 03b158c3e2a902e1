#include "coordinator/metrics/coordinator_metrics.h"

#include <map>

#include "absl/strings/ascii.h"

namespace ddlm {
namespace {

std::string Lower(const std::string& s) { return absl::AsciiStrToLower(s); }

}  // namespace

std::string RenderCoordinatorMetrics(const std::vector<Job>& jobs, const std::vector<WorkerInfo>& workers,
                                     const RpcStats* rpc_stats) {
  PrometheusText out;

  std::map<JobState, int> job_states;
  for (int s = QUEUED; s <= PREPARING; ++s) job_states[static_cast<JobState>(s)] = 0;
  for (const Job& job : jobs) ++job_states[job.state()];
  out.Family("ddlm_jobs", "gauge", "Jobs the coordinator keeps, by state.");
  for (const auto& [state, n] : job_states) out.Sample("ddlm_jobs", {{"state", Lower(JobState_Name(state))}}, n);

  std::map<WorkerState, int> worker_states;
  for (int s = IDLE; s <= DEAD; ++s) worker_states[static_cast<WorkerState>(s)] = 0;
  for (const WorkerInfo& w : workers) ++worker_states[w.state()];
  out.Family("ddlm_workers", "gauge", "Registered workers, by state.");
  for (const auto& [state, n] : worker_states) {
    out.Sample("ddlm_workers", {{"state", Lower(WorkerState_Name(state))}}, n);
  }

  std::vector<const Job*> running;
  for (const Job& job : jobs) {
    if (job.state() == RUNNING) running.push_back(&job);
  }
  struct PerJob {
    const char* name;
    const char* help;
    bool (*has)(const Job&);
    double (*value)(const Job&);
  };
  const PerJob per_job[] = {
      {"ddlm_job_tokens_per_second", "Training tokens per second, summed over ranks (latest log interval).",
       [](const Job& j) { return j.has_last_training(); },
       [](const Job& j) { return j.last_training().tokens_per_second(); }},
      {"ddlm_job_training_loss", "Training loss, mean over ranks (latest log interval).",
       [](const Job& j) { return j.has_last_training(); }, [](const Job& j) { return j.last_training().loss(); }},
      {"ddlm_job_training_ppl", "Training perplexity (latest log interval).",
       [](const Job& j) { return j.has_last_training(); }, [](const Job& j) { return j.last_training().ppl(); }},
      {"ddlm_job_learning_rate", "Learning rate (latest log interval).",
       [](const Job& j) { return j.has_last_training(); }, [](const Job& j) { return j.last_training().lr(); }},
      {"ddlm_job_epoch", "Epoch being trained (1-based).", [](const Job&) { return true; },
       [](const Job& j) { return static_cast<double>(j.epoch()); }},
      {"ddlm_job_global_step", "Training steps taken.", [](const Job&) { return true; },
       [](const Job& j) { return static_cast<double>(j.global_step()); }},
      {"ddlm_job_best_val_ppl", "Best validation perplexity so far.", [](const Job& j) { return j.has_best_val_ppl(); },
       [](const Job& j) { return j.best_val_ppl(); }},
  };
  for (const PerJob& metric : per_job) {
    out.Family(metric.name, "gauge", metric.help);
    for (const Job* job : running) {
      if (metric.has(*job)) out.Sample(metric.name, {{"job_id", job->id()}, {"name", job->name()}}, metric.value(*job));
    }
  }

  if (rpc_stats != nullptr) rpc_stats->AppendTo(out);
  return out.text();
}

}  // namespace ddlm
