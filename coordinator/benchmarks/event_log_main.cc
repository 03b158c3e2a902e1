// Benchmark (not a test): what persisting one job event costs, as a function of how
// many events the job already has.
//
//   bazel run -c opt //coordinator/benchmarks:event_log -- --state_dir=/tmp/ddlm_event_log
//
// For each size N in --events (default 1,000 and 100,000), a job whose log already
// holds N events gets --appends more, each the way the coordinator persists an event
// (coordinator/record_writer.h): one JobLogEntry frame appended and synced before the
// call answers. For contrast, the layout before the log: the whole JobRecord (N
// events) rewritten atomically (temp file, fsync, rename) per event, --rewrites times.
// Each line prints the median and p99 of one event's cost and the bytes it wrote.
// The entries are realistic: a full JobSpec, 8 workers, 4 kept checkpoints.

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/base/cli.h"
#include "common/base/config.h"
#include "common/base/file_io.h"
#include "coordinator/job_store.h"
#include "coordinator/record_writer.h"

ABSL_FLAG(std::string, state_dir, "/tmp/ddlm_event_log_bench", "Scratch state directory (emptied).");
ABSL_FLAG(std::string, events, "1000,100000", "Comma-separated job lengths (events already logged).");
ABSL_FLAG(int32_t, appends, 200, "Events persisted per length through the log.");
ABSL_FLAG(int32_t, rewrites, 10, "Events persisted per length by rewriting the whole record.");

namespace ddlm {
namespace {

using Clock = std::chrono::steady_clock;

JobLogEntry MakeEntry(const std::string& id, int64_t sequence) {
  JobLogEntry e;
  e.set_generation(1);
  Job& j = *e.mutable_job();
  j.set_id(id);
  j.set_name("bench");
  JobSpec& spec = *j.mutable_spec();
  spec.mutable_data()->set_path("data/wikitext-2");
  spec.set_num_workers(8);
  ApplyDefaults(&spec);
  j.set_state(RUNNING);
  j.set_attempt(1);
  for (int r = 0; r < 8; ++r) j.add_workers("worker-" + std::to_string(r));
  j.set_epoch(3);
  j.set_global_step(sequence * 200);
  j.set_last_event_sequence(sequence);
  for (int c = 0; c < 4; ++c) {
    CheckpointInfo& ckpt = *e.add_checkpoints();
    ckpt.set_id("e0003-s0000" + std::to_string(4000 + c));
    ckpt.set_epoch(3);
    ckpt.set_global_step(4000 + c);
    ckpt.set_size_bytes(123456789);
    ckpt.set_crc32(0xdeadbeef);
    ckpt.set_val_loss(5.1);
  }
  JobEvent& event = *e.mutable_event();
  event.set_sequence(sequence);
  event.set_unix_micros(1700000000000000 + sequence);
  TrainingMetrics& t = *event.mutable_training();
  t.set_epoch(3);
  t.set_batch(sequence % 2983);
  t.set_num_batches(2983);
  t.set_lr(20);
  t.set_loss(5.5);
  t.set_ppl(244.7);
  t.set_tokens_per_second(51234.5);
  t.set_ms_per_batch(101.2);
  *j.mutable_last_training() = t;
  return e;
}

struct Summary {
  double median_us, p99_us;
};

Summary Summarize(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  const size_t p99 = std::min(us.size() - 1, static_cast<size_t>(0.99 * static_cast<double>(us.size())));
  return {us[us.size() / 2], us[p99]};
}

double Since(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

int Run() {
  const std::string dir = absl::GetFlag(FLAGS_state_dir);
  std::vector<int64_t> sizes;
  for (absl::string_view part : absl::StrSplit(absl::GetFlag(FLAGS_events), ',')) {
    int64_t n = 0;
    if (!absl::SimpleAtoi(part, &n) || n < 1) {
      std::fprintf(stderr, "--events: '%s' is not a positive count\n", std::string(part).c_str());
      return 2;
    }
    sizes.push_back(n);
  }
  const int appends = absl::GetFlag(FLAGS_appends), rewrites = absl::GetFlag(FLAGS_rewrites);
  if (appends < 1 || rewrites < 1) {
    std::fprintf(stderr, "--appends and --rewrites must be >= 1\n");
    return 2;
  }
  if (std::system(("rm -rf '" + dir + "'").c_str()) != 0) return 1;
  JobStore store(dir);
  if (absl::Status s = store.Init(); !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return 1;
  }
  JobRecordWriter writer(&store);
  std::printf("%-10s %-34s %12s %12s %14s\n", "events", "how", "median_us", "p99_us", "bytes/event");
  for (int64_t n : sizes) {
    const std::string id = "job-" + std::to_string(n);
    JobRecord record;
    *record.mutable_job() = MakeEntry(id, 0).job();
    record.set_generation(1);
    if (absl::Status s = store.WriteSnapshot(record); !s.ok()) {
      std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
      return 1;
    }
    // The job's first n events, logged (one sync at the end: setup, not measured).
    for (int64_t seq = 1; seq <= n; ++seq) {
      JobLogEntry e = MakeEntry(id, seq);
      if (!store.AppendLog(id, e).ok()) return 1;
      *record.add_events() = e.event();
    }
    if (!store.SyncLogs().ok()) return 1;
    const int64_t log_bytes_before = static_cast<int64_t>(ReadFile(store.LogPath(id))->size());

    std::vector<double> us;
    for (int i = 0; i < appends; ++i) {
      JobLogEntry e = MakeEntry(id, n + 1 + i);
      const auto start = Clock::now();
      absl::Status s = writer.Flush(writer.Append(id, std::move(e)));
      us.push_back(Since(start));
      if (!s.ok()) {
        std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
        return 1;
      }
    }
    const int64_t log_bytes = static_cast<int64_t>(ReadFile(store.LogPath(id))->size());
    Summary a = Summarize(us);
    std::printf("%-10lld %-34s %12.0f %12.0f %14lld\n", static_cast<long long>(n), "log append + fdatasync (now)",
                a.median_us, a.p99_us, static_cast<long long>((log_bytes - log_bytes_before) / appends));

    us.clear();
    const std::string path = dir + "/rewrite-" + std::to_string(n) + ".pb";
    int64_t bytes = 0;
    for (int i = 0; i < rewrites; ++i) {
      *record.add_events() = MakeEntry(id, n + appends + 1 + i).event();
      const auto start = Clock::now();
      const std::string encoded = EncodeJobRecord(record);
      absl::Status s = WriteFileAtomically(path, encoded);
      us.push_back(Since(start));
      bytes = static_cast<int64_t>(encoded.size());
      if (!s.ok()) {
        std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
        return 1;
      }
    }
    Summary r = Summarize(us);
    std::printf("%-10lld %-34s %12.0f %12.0f %14lld\n", static_cast<long long>(n), "whole-record rewrite (before)",
                r.median_us, r.p99_us, static_cast<long long>(bytes));
  }
  std::printf("syncs %lld for %lld log writes\n", static_cast<long long>(writer.syncs()),
              static_cast<long long>(writer.writes()));
  return 0;
}

}  // namespace
}  // namespace ddlm

int main(int argc, char** argv) {
  ddlm::ParseFlagsOrExit(argc, argv, "event_log",
                         "event_log [--events=1000,100000] [--appends=200] [--rewrites=10]: "
                         "the cost of persisting one job event");
  return ddlm::Run();
}
