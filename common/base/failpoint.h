#ifndef DDLM_COMMON_BASE_FAILPOINT_H_
#define DDLM_COMMON_BASE_FAILPOINT_H_

// Failpoints: named places in ddlm's binaries where a fault-injection test can stop a
// process, so that it kills that process (or another one) exactly there rather than at
// a moment it guesses from outside. The chaos test (tests/chaos) uses them to kill at
// every phase of an attempt: rendezvous, a shard or checkpoint download in flight, an
// upload in flight, the evaluation barrier, the test pass, a training step.
//
// Armed by the environment only: DDLM_FAILPOINTS="NAME:N[,NAME:N...]" stops the process
// at the N-th time (counted from 1, over the process's life) it reaches failpoint NAME.
// There it writes one line to stderr,
//
//   ddlm failpoint NAME hit N (pid P)
//
// and stops itself with SIGSTOP: every thread stands still (no heartbeats, no bytes on
// its connections) until whoever watches kills it or continues it with SIGCONT.
// Unarmed (the variable unset, as in every real run) a failpoint costs one load of a
// flag. A malformed DDLM_FAILPOINTS ends the process at its first failpoint, naming
// what is wrong, rather than quietly not stopping where a test expects it to.
//
// Threading: thread-safe.

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace ddlm {

// The names in use, so that a test and the code agree on them.
inline constexpr absl::string_view kFailpointRendezvous = "rendezvous";
inline constexpr absl::string_view kFailpointShardDownload = "shard_download";
inline constexpr absl::string_view kFailpointCheckpointDownload = "checkpoint_download";
inline constexpr absl::string_view kFailpointCheckpointUpload = "checkpoint_upload";
inline constexpr absl::string_view kFailpointEvaluationBarrier = "evaluation_barrier";
inline constexpr absl::string_view kFailpointTestPass = "test_pass";
inline constexpr absl::string_view kFailpointTrainStep = "train_step";

// Counts a hit of `name`; stops the process if DDLM_FAILPOINTS asks for this one.
void Failpoint(absl::string_view name);

namespace failpoint_internal {
// For tests: parses a DDLM_FAILPOINTS value into (name, hit) pairs; false (and `error`)
// if malformed.
bool ParseSpec(absl::string_view spec, std::vector<std::pair<std::string, int>>* points, std::string* error);
}  // namespace failpoint_internal

}  // namespace ddlm

#endif  // DDLM_COMMON_BASE_FAILPOINT_H_
