#include "coordinator/metrics/coordinator_metrics.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "coordinator/metrics/prometheus_text.h"
#include "coordinator/metrics/rpc_stats.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

Job MakeJob(const std::string& id, JobState state) {
  Job job;
  job.set_id(id);
  job.set_name("lm \"big\"");
  job.set_state(state);
  job.set_epoch(3);
  job.set_global_step(1234);
  return job;
}

TEST(PrometheusTextTest, FamiliesSamplesAndEscapes) {
  PrometheusText text;
  text.Family("x_total", "counter", "What x counts.\nSecond line.");
  text.Sample("x_total", {{"a", "q\"b\\c\nd"}}, 2);
  text.Sample("x_total", {}, 0.5);
  EXPECT_EQ(text.text(),
            "# HELP x_total What x counts.\\nSecond line.\n"
            "# TYPE x_total counter\n"
            "x_total{a=\"q\\\"b\\\\c\\nd\"} 2\n"
            "x_total 0.5\n");
}

TEST(CoordinatorMetricsTest, JobsAndWorkersByStateAndRunningJobsSeries) {
  Job running = MakeJob("job-1", RUNNING);
  TrainingMetrics& m = *running.mutable_last_training();
  m.set_tokens_per_second(5120.5);
  m.set_loss(4.25);
  m.set_ppl(70.1);
  m.set_lr(20);
  running.set_best_val_ppl(80.5);
  Job done = MakeJob("job-2", SUCCEEDED);
  done.mutable_last_training()->set_tokens_per_second(999);
  std::vector<WorkerInfo> workers(3);
  workers[0].set_state(BUSY);
  workers[1].set_state(BUSY);
  workers[2].set_state(IDLE);

  const std::string text = RenderCoordinatorMetrics({running, done, MakeJob("job-3", QUEUED)}, workers, nullptr);
  EXPECT_THAT(text, HasSubstr("# TYPE ddlm_jobs gauge\n"));
  EXPECT_THAT(text, HasSubstr("ddlm_jobs{state=\"running\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ddlm_jobs{state=\"succeeded\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ddlm_jobs{state=\"queued\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ddlm_jobs{state=\"failed\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("ddlm_jobs{state=\"preparing\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("ddlm_workers{state=\"busy\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("ddlm_workers{state=\"idle\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ddlm_workers{state=\"dead\"} 0\n"));
  const std::string labels = "{job_id=\"job-1\",name=\"lm \\\"big\\\"\"}";
  EXPECT_THAT(text, HasSubstr("ddlm_job_tokens_per_second" + labels + " 5120.5\n"));
  EXPECT_THAT(text, HasSubstr("ddlm_job_training_loss" + labels + " 4.25\n"));
  EXPECT_THAT(text, HasSubstr("ddlm_job_learning_rate" + labels + " 20\n"));
  EXPECT_THAT(text, HasSubstr("ddlm_job_epoch" + labels + " 3\n"));
  EXPECT_THAT(text, HasSubstr("ddlm_job_global_step" + labels + " 1234\n"));
  EXPECT_THAT(text, HasSubstr("ddlm_job_best_val_ppl" + labels + " 80.5\n"));
  // Finished and queued jobs have no per-job series.
  EXPECT_THAT(text, Not(HasSubstr("job_id=\"job-2\"")));
  EXPECT_THAT(text, Not(HasSubstr("job_id=\"job-3\"")));
}

TEST(CoordinatorMetricsTest, ARunningJobWithoutMetricsYetHasOnlyItsPosition) {
  const std::string text = RenderCoordinatorMetrics({MakeJob("job-1", RUNNING)}, {}, nullptr);
  EXPECT_THAT(text, HasSubstr("ddlm_job_epoch{job_id=\"job-1\""));
  EXPECT_THAT(text, Not(HasSubstr("ddlm_job_tokens_per_second{")));
  EXPECT_THAT(text, Not(HasSubstr("ddlm_job_best_val_ppl{")));
}

TEST(RpcStatsTest, CountsByMethodAndCodeWithACumulativeHistogram) {
  RpcStats stats;
  stats.Record("/ddlm.JobService/GetJob", 0, absl::Microseconds(300));
  stats.Record("/ddlm.JobService/GetJob", 0, absl::Milliseconds(3));
  stats.Record("/ddlm.JobService/GetJob", 5, absl::Seconds(100));  // NOT_FOUND
  stats.Record("/ddlm.JobService/GetJob", 99, absl::Seconds(1));   // No such code: UNKNOWN
  PrometheusText out;
  stats.AppendTo(out);
  const std::string& text = out.text();
  EXPECT_THAT(text, HasSubstr("ddlm_rpc_requests_total{method=\"/ddlm.JobService/GetJob\",code=\"OK\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("ddlm_rpc_requests_total{method=\"/ddlm.JobService/GetJob\",code=\"NOT_FOUND\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ddlm_rpc_requests_total{method=\"/ddlm.JobService/GetJob\",code=\"UNKNOWN\"} 1\n"));
  const std::string b = "ddlm_rpc_duration_seconds_bucket{method=\"/ddlm.JobService/GetJob\",le=";
  EXPECT_THAT(text, HasSubstr(b + "\"0.0005\"} 1\n"));
  EXPECT_THAT(text, HasSubstr(b + "\"0.0025\"} 1\n"));
  EXPECT_THAT(text, HasSubstr(b + "\"0.005\"} 2\n"));
  EXPECT_THAT(text, HasSubstr(b + "\"60\"} 3\n"));
  EXPECT_THAT(text, HasSubstr(b + "\"+Inf\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("ddlm_rpc_duration_seconds_count{method=\"/ddlm.JobService/GetJob\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("ddlm_rpc_duration_seconds_sum{method=\"/ddlm.JobService/GetJob\"} 101.0033"));
}

}  // namespace
}  // namespace ddlm
