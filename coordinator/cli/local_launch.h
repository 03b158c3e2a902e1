#ifndef DDLM_COORDINATOR_CLI_LOCAL_LAUNCH_H_
#define DDLM_COORDINATOR_CLI_LOCAL_LAUNCH_H_

// `ddlm launch`: a whole job on this machine in one command. It starts a coordinator
// on loopback and N workers (common/base/subprocess.h; their logs go to
// <state_dir>/logs/), submits the job, follows it, saves the best model to
// spec.checkpoint.path once it SUCCEEDED, and stops the workers, then the coordinator,
// on every way out. It talks to the coordinator only through JobService, as a client on
// any other machine would.
//
// Secure by default: the first launch in a state directory makes a CA, the
// coordinator's certificate and tokens in <state_dir>/secrets/ (0700; common/
// certificates.h): an admin token (admin.token) and a worker token (worker.token); later
// launches reuse them. The coordinator serves TLS and requires the tokens; the workers
// and this launcher use them. --insecure runs everything in plain text instead.
//
// Threading: runs on the calling thread.

#include <cstdio>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "proto/config.pb.h"
#include "proto/job.pb.h"

namespace ddlm {

struct LocalLaunchOptions {
  JobSpec spec;  // Its num_workers becomes the number of workers started.
  // Workers to start; unset: ChooseLaunchLayout's.
  std::optional<int> workers;
  // Whether the spec's file names num_workers (LoadJobSpec fills in 1 where it does not).
  bool spec_names_num_workers = false;
  // Show the job as a status line redrawn in place (progress_display.h), for a terminal.
  bool live_progress = false;
  // "cpu", "cuda" (worker i on cuda:i) or "cuda:N" (every worker on GPU N).
  std::string device = "cpu";
  std::string collective = "auto";
  std::string state_dir = "ddlm_state";
  int port = 0;           // 0: any free port.
  bool insecure = false;  // Plain text, no tokens.
  std::string coordinator_binary;
  std::string worker_binary;
};

// What launch says about its layout: for several CPU workers on this one machine, that
// one worker with every core (and the same global batch, so the same batches) is the
// faster layout here (measured in the README's Performance section); "" otherwise.
std::string LayoutAdvice(const JobSpec& spec, int workers, const std::string& device);

// The number of workers launch starts when --workers is not given, and why (a line for
// the user): the spec's num_workers if its file names one; on the CPU, 1 worker with every core
// (on one machine, several workers sharing the cores train slower: the README's
// Performance section); with --device=cuda, one per GPU (`visible_gpus`, at least 1);
// with --device=cuda:N, 1.
struct LaunchLayout {
  int workers = 1;
  std::string reason;
};
LaunchLayout ChooseLaunchLayout(const JobSpec& spec, bool spec_names_num_workers, const std::string& device,
                                int visible_gpus);

// GPUs this process may use, without the CUDA runtime: the entries of
// CUDA_VISIBLE_DEVICES if set, else the /dev/nvidia<N> device files.
int CountVisibleGpus();

// Runs the job; returns its final state. An error if a process cannot start, the
// secrets cannot be made, or the job is refused.
absl::StatusOr<JobState> LaunchLocally(const LocalLaunchOptions& options, std::FILE* out);

// What a secure launch uses: <state_dir>/secrets/ with ca.pem, server.pem, server.key,
// tokens (the coordinator's --tokens_file), admin.token and worker.token; made if missing.
struct LaunchSecrets {
  std::string dir, ca_cert, server_cert, server_key, tokens_file, admin_token_file, worker_token_file;
};
absl::StatusOr<LaunchSecrets> EnsureLaunchSecrets(const std::string& state_dir);

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_CLI_LOCAL_LAUNCH_H_
