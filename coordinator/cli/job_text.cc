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
        "| epoch %3d | %5d/%5d batches | lr %.2f | ms/batch %6.1f | loss %5.2f | ppl %8.2f | %.0f tok/s",
        m.epoch(), m.batch(), m.num_batches(), m.lr(), m.ms_per_batch(), m.loss(), m.ppl(),
        m.tokens_per_second());
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
    absl::StrAppendFormat(&out, "%-8s %-10s %-20s %7d %6d %10s %10s  %s\n", j.id(), JobState_Name(j.state()),
                          j.name(), j.attempt(), j.epoch(),
                          j.has_best_val_ppl() ? absl::StrFormat("%.2f", j.best_val_ppl()) : "-",
                          j.has_test_ppl() ? absl::StrFormat("%.2f", j.test_ppl()) : "-", j.message());
  }
  return out;
}

}  // namespace ddlm
