// The GPU check's figures and gates (tests/gpu/gates.sh, sourced by tests/gpu/run.sh):
// each case runs bash, sources the script and calls its functions on inline fixtures.
// A missing or non-numeric figure must fail and say which; numbers compare as numbers.

#include <string>

#include "common/testing/shell.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace {

using ::testing::HasSubstr;

using Result = ::ddlm::ShellResult;
using ::ddlm::ShellQuote;

// bash -c 'source gates.sh; SCRIPT'.
Result Gates(const std::string& script) {
  return ::ddlm::RunBash("source " + ShellQuote(::ddlm::RunfilePath("tests/gpu/gates.sh")) + " || exit 99; " + script);
}

// `call LOG` on a log file holding `lines` (shell words, one per line), removed after.
std::string WithLog(const std::string& lines, const std::string& call) {
  return "f=$(mktemp) || exit 98; printf '%s\\n' " + lines + " > \"$f\"; " + call +
         " \"$f\"; rc=$?; rm -f \"$f\"; exit $rc";
}

const char kUpstreamLog[] =
    "'Using device: cuda' "
    "'| epoch   1 |    50/  731 batches | lr 20.00 | ms/batch 50.00 | loss  7.50 | ppl  1808.04' "
    "'| epoch   1 |   100/  731 batches | lr 20.00 | ms/batch 10.00 | loss  6.90 | ppl   992.27' "
    "'| epoch   1 |   150/  731 batches | lr 20.00 | ms/batch 14.00 | loss  6.60 | ppl   735.10' "
    "'| epoch   1 |   200/  731 batches | lr 20.00 | ms/batch 12.00 | loss  6.40 | ppl   601.85' "
    "'-----------------------------------------------------------------------------------------' "
    "'| end of epoch   1 | time:  9.87s | valid loss  6.10 | valid ppl   445.86' "
    "'| End of training | test loss  6.05 | test ppl   424.11'";

const char kDdlmLog[] =
    "'I20260101 00:00:00.000000 1 train_main.cc:141] threads: 16, device cuda:0' "
    "'| model LSTM | 6960882 parameters | optimizer SGD | cuda:0 | BF16' "
    "'| epoch   1 |    50/  731 batches | lr 20.00 | ms/batch  9.00 | loss  7.49 | ppl  1790.00 | tok/s   77778' "
    "'| epoch   1 |   100/  731 batches | lr 20.00 | ms/batch  4.00 | loss  6.91 | ppl  1002.00 | tok/s  175000' "
    "'| epoch   1 |   150/  731 batches | lr 20.00 | ms/batch  5.00 | loss  6.61 | ppl   742.00 | tok/s  140000' "
    "'| end of epoch   1 | time:  4.25s | valid loss  6.11 | valid ppl   450.12 | train tok/s  150000'";

TEST(GateFigureTest, MissingEmptyOrNonNumericFailsNamingTheFigure) {
  for (const char* value : {"", "n/a", "nan", "12 s", "1.2.3", "0", "-5"}) {
    Result run = Gates(std::string("gate_figure 'LSTM 200/200 bf16: ddlm tok/s' ") + ShellQuote(value));
    EXPECT_NE(run.exit_code, 0) << "'" << value << "'";
    EXPECT_THAT(run.out, HasSubstr("FAIL LSTM 200/200 bf16: ddlm tok/s: missing")) << "'" << value << "'";
  }
}

TEST(GateFigureTest, PresentNumberPasses) {
  for (const char* value : {"58333", "0.5", "12.75", "1e3"}) {
    Result run = Gates(std::string("gate_figure 'upstream epoch s' ") + value);
    EXPECT_EQ(run.exit_code, 0) << value << ": " << run.out;
    EXPECT_EQ(run.out, "") << value;
  }
}

TEST(GateRatioTest, MissingInputsAreNeverAPass) {
  for (const char* args : {"n/a 1000", "1000 n/a", "'' ''", "1000 0", "abc 1", "1000 ''"}) {
    Result run = Gates(std::string("gate_ratio ") + args);
    EXPECT_NE(run.exit_code, 0) << args;
    EXPECT_EQ(run.out, "MISSING\n") << args;
  }
  // The old gate compared "n/a" >= "1.3" as strings, and passed.
  EXPECT_NE(Gates("gate_at_least \"$(gate_ratio n/a 1000)\" 1.3").exit_code, 0);
  EXPECT_NE(Gates("gate_at_least n/a 1.3").exit_code, 0);
}

TEST(GateRatioTest, NumbersDivideAndCompareAsNumbers) {
  Result run = Gates("gate_ratio 1300 1000");
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_EQ(run.out, "1.30\n");
  EXPECT_EQ(Gates("gate_at_least 1.31 1.3").exit_code, 0);
  EXPECT_NE(Gates("gate_at_least 1.29 1.3").exit_code, 0);
  EXPECT_EQ(Gates("gate_at_least 10 9").exit_code, 0);  // "10" < "9" as strings.
}

TEST(GateMedianTest, OfKnownLists) {
  EXPECT_EQ(Gates("echo 3 1 2 | gate_median").out, "2\n");
  EXPECT_EQ(Gates("printf '4\\n1\\n3\\n2' | gate_median").out, "2.5\n");
  EXPECT_EQ(Gates("echo 10 9 100 | gate_median").out, "10\n");  // Numeric order, not "10" "100" "9".
  EXPECT_EQ(Gates("echo 7.25 | gate_median").out, "7.25\n");
  Result empty = Gates("gate_median < /dev/null");
  EXPECT_NE(empty.exit_code, 0);
  EXPECT_EQ(empty.out, "");
  Result junk = Gates("echo 1 n/a 3 | gate_median");
  EXPECT_NE(junk.exit_code, 0);
  EXPECT_EQ(junk.out, "");
}

TEST(GateParseTest, UpstreamLog) {
  EXPECT_EQ(Gates(WithLog(kUpstreamLog, "gate_ms_per_batch")).out, "50.00\n10.00\n14.00\n12.00\n");
  EXPECT_EQ(Gates(WithLog(kUpstreamLog, "gate_epoch_seconds")).out, "9.87\n");
  EXPECT_EQ(Gates(WithLog(kUpstreamLog, "gate_valid_ppl")).out, "445.86\n");
  EXPECT_EQ(Gates(WithLog(kUpstreamLog, "gate_train_batches")).out, "731\n");
  // 20 x 35 x 1000 / median(10, 14, 12): the first (warm-up) line left out.
  EXPECT_EQ(Gates(WithLog(kUpstreamLog, "gate_tokens_per_s")).out, "58333\n");
}

TEST(GateParseTest, DdlmLogs) {
  EXPECT_EQ(Gates(WithLog(kDdlmLog, "gate_ms_per_batch")).out, "9.00\n4.00\n5.00\n");
  EXPECT_EQ(Gates(WithLog(kDdlmLog, "gate_epoch_seconds")).out, "4.25\n");
  EXPECT_EQ(Gates(WithLog(kDdlmLog, "gate_valid_ppl")).out, "450.12\n");
  EXPECT_EQ(Gates(WithLog(kDdlmLog, "gate_tokens_per_s")).out, "155556\n");  // 700000 / 4.5.
  const std::string nosync =
      "'matmul peak   2048x2048 Float: 50000.0 GFLOP/s' "
      "'train LSTM: 200 batches of 700 tokens in 0.80 s: 4.0 ms/batch, 175000 tokens/s'";
  EXPECT_EQ(Gates(WithLog(nosync, "gate_nosync_tokens_per_s")).out, "175000\n");
}

TEST(GateParseTest, MissingFiguresAreMissing) {
  const std::string one_line =
      "'| epoch   1 |    50/  731 batches | lr 20.00 | ms/batch 50.00 | loss  7.50 | ppl  1808.04'";
  // One log line is the warm-up only: no tokens/s figure, and so a FAIL.
  Result run = Gates(
      WithLog(one_line, "tokens() { t=$(gate_tokens_per_s \"$1\"); gate_figure 'upstream tok/s' \"$t\"; }; tokens"));
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.out, HasSubstr("FAIL upstream tok/s: missing (empty)"));
  // A run that died before the end of its epoch.
  EXPECT_NE(Gates(WithLog(one_line, "gate_epoch_seconds")).exit_code, 0);
  EXPECT_NE(Gates(WithLog(one_line, "gate_valid_ppl")).exit_code, 0);
  EXPECT_NE(Gates(WithLog(one_line, "gate_nosync_tokens_per_s")).exit_code, 0);
}

TEST(GateBf16Test, WithinTwoPercentAndNotIdentical) {
  EXPECT_EQ(Gates("gate_within 0.02 100 101.9").exit_code, 0);
  EXPECT_EQ(Gates("gate_within 0.02 100 98.1").exit_code, 0);
  EXPECT_NE(Gates("gate_within 0.02 100 102.1").exit_code, 0);
  EXPECT_NE(Gates("gate_within 0.02 100 n/a").exit_code, 0);
  EXPECT_EQ(Gates("gate_differ 445.86 445.90").exit_code, 0);
  EXPECT_NE(Gates("gate_differ 445.86 445.860").exit_code, 0);  // Equal as numbers.
  EXPECT_NE(Gates("gate_differ 445.86 ''").exit_code, 0);
}

}  // namespace
