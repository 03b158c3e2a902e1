#include "coordinator/cli/job_text.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ddlm {

std::string DescribeEvent(const JobEvent& event) {
  if (event.has_state()) {
    return absl::StrCat("| job ", JobState_Name(event.state().state()), event.state().message().empty() ? "" : ": ",
                        event.state().message());
  }
  if (event.has_training()) {
    const TrainingMetrics& m = event.training();
    return absl::StrFormat(
        "| epoch %3d | %5d/%5d batches | lr %.2f | ms/batch %6.1f | loss %5.2f | ppl %8.2f | %.0f tok/s", m.epoch(),
        m.batch(), m.num_batches(), m.lr(), m.ms_per_batch(), m.loss(), m.ppl(), m.tokens_per_second());
  }
  if (event.has_epoch()) {
    const EpochResult& e = event.epoch();
    return absl::StrFormat("| end of epoch %3d | time: %5.2fs | valid loss %5.2f | valid ppl %8.2f | next lr %.2f%s",
                           e.epoch(), e.seconds(), e.val_loss(), e.val_ppl(), e.lr(), e.best() ? " | best" : "");
  }
  if (event.has_checkpoint()) {
    const CheckpointInfo& c = event.checkpoint();
    return absl::StrFormat("| checkpoint %s kept (%d bytes, crc32 %08x)%s", c.id(), c.size_bytes(), c.crc32(),
                           c.best() ? " | best" : "");
  }
  if (event.has_test()) {
    return absl::StrFormat("| End of training | test loss %5.2f | test ppl %8.2f", event.test().test_loss(),
                           event.test().test_ppl());
  }
  return "";
}

std::string JobTable(const std::vector<Job>& jobs) {
  std::string out = absl::StrFormat("%-8s %-10s %-20s %7s %6s %10s %10s  %s\n", "JOB", "STATE", "NAME", "ATTEMPT",
                                    "EPOCH", "BEST PPL", "TEST PPL", "MESSAGE");
  for (const Job& j : jobs) {
    absl::StrAppendFormat(&out, "%-8s %-10s %-20s %7d %6d %10s %10s  %s\n", j.id(), JobState_Name(j.state()), j.name(),
                          j.attempt(), j.epoch(),
                          j.has_best_val_ppl() ? absl::StrFormat("%.2f", j.best_val_ppl()) : "-",
                          j.has_test_ppl() ? absl::StrFormat("%.2f", j.test_ppl()) : "-", j.message());
  }
  return out;
}

namespace {

std::string Elapsed(int64_t seconds) {
  if (seconds < 0) seconds = 0;
  return absl::StrFormat("%d:%02d:%02d", seconds / 3600, (seconds / 60) % 60, seconds % 60);
}

std::string Timestamp(int64_t unix_seconds) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixSeconds(unix_seconds), absl::UTCTimeZone());
}

}  // namespace

std::string JobSummary(const Job& j, absl::Time now) {
  const JobSpec& spec = j.spec();
  std::string out =
      absl::StrFormat("%s  %s  %s", j.id(), j.name().empty() ? "(no name)" : j.name(), JobState_Name(j.state()));
  absl::StrAppendFormat(&out, "  (attempt %d%s%s)\n", j.attempt(),
                        j.restarts() > 0 ? absl::StrCat(", ", j.restarts(), " restarts") : "",
                        j.owner().empty() ? "" : absl::StrCat(", owner ", j.owner()));
  if (!j.message().empty()) absl::StrAppendFormat(&out, "  message   %s\n", j.message());
  absl::StrAppendFormat(&out, "  model     %s, %d layers x %d, emsize %d; %d epochs on %d workers\n",
                        ModelType_Name(spec.model().type()), spec.model().nlayers(), spec.model().nhid(),
                        spec.model().emsize(), spec.schedule().epochs(), spec.num_workers());
  absl::StrAppendFormat(&out, "  progress  epoch %d/%d, step %d", j.epoch(), spec.schedule().epochs(), j.global_step());
  if (j.state() == RUNNING && j.has_last_training() && j.last_training().num_batches() > 0) {
    absl::StrAppendFormat(&out, " (batch %d/%d of the epoch)", j.last_training().batch() + 1,
                          j.last_training().num_batches());
  }
  out += "\n";
  if (j.has_last_training()) {
    const TrainingMetrics& m = j.last_training();
    absl::StrAppendFormat(&out, "  training  loss %.2f | ppl %.2f | lr %.2f | %.0f tok/s | %.1f ms/batch\n", m.loss(),
                          m.ppl(), m.lr(), m.tokens_per_second(), m.ms_per_batch());
  }
  absl::StrAppendFormat(&out, "  best      valid ppl %s | test ppl %s | %d checkpoints kept\n",
                        j.has_best_val_ppl() ? absl::StrFormat("%.2f", j.best_val_ppl()) : "-",
                        j.has_test_ppl() ? absl::StrFormat("%.2f", j.test_ppl()) : "-", j.num_checkpoints());
  if (j.submitted_unix_seconds() > 0) {
    absl::StrAppendFormat(&out, "  times     submitted %s", Timestamp(j.submitted_unix_seconds()));
    if (j.started_unix_seconds() > 0) {
      const int64_t end = j.finished_unix_seconds() > 0 ? j.finished_unix_seconds() : absl::ToUnixSeconds(now);
      absl::StrAppendFormat(&out, ", %s %s", j.finished_unix_seconds() > 0 ? "ran" : "running for",
                            Elapsed(end - j.started_unix_seconds()));
    }
    out += "\n";
  }
  return out;
}

}  // namespace ddlm
