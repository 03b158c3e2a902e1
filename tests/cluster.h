#ifndef DDLM_TESTS_CLUSTER_H_
#define DDLM_TESTS_CLUSTER_H_

// Test helper: a real ddlm_coordinator and ddlm_worker processes on loopback (port 0),
// plus a JobService stub. Everything is stopped and reaped when the Cluster goes away.
// In plain text (--insecure) unless Secure() is called before Start.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "common/base/subprocess.h"
#include "proto/job_service.grpc.pb.h"

namespace ddlm::testing {

class Cluster {
 public:
  // Binaries are found relative to the test's runfiles root.
  explicit Cluster(std::string state_dir, std::vector<std::string> coordinator_flags = {});
  ~Cluster();

  // Before Start: the coordinator serves TLS with a CA of the cluster's own and requires
  // the tokens in `tokens_file_text` ("TOKEN ROLE NAME" lines, access_control.h);
  // stub() calls with `client_token`; workers get --ca_cert (their --token_file is
  // for the test to give, TokenFile). False if the certificates cannot be made.
  bool Secure(const std::string& tokens_file_text, const std::string& client_token);
  bool secure() const { return !ca_cert_.empty(); }
  const std::string& ca_cert() const { return ca_cert_; }
  // A file holding `token`, for a worker's --token_file.
  std::string TokenFile(const std::string& token);
  // Credentials for the cluster's coordinator: TLS with `token` ("" : none), or plain text.
  std::shared_ptr<grpc::ChannelCredentials> Credentials(const std::string& token);

  // Starts the coordinator (on `port`, or any free one) and waits until it serves;
  // false if it did not start.
  bool Start(int port = 0);
  // SIGKILLs the coordinator and starts another on the same port and state directory:
  // a crash and a restart. False if the new one did not start.
  bool CrashAndRestartCoordinator();
  // Starts a worker and waits for its registration line. `env`: "NAME=value" entries
  // added to its environment (DDLM_FAILPOINTS, say).
  bool AddWorker(const std::string& worker_id, std::vector<std::string> extra_flags = {},
                 std::vector<std::string> env = {});

  const std::string& address() const { return address_; }
  JobService::Stub& stub() { return *stub_; }
  Subprocess& coordinator() { return *coordinator_; }
  std::vector<std::unique_ptr<Subprocess>>& workers() { return workers_; }

  // Submits; fails the calling test on error.
  absl::StatusOr<Job> Submit(const JobSpec& spec);
  absl::StatusOr<Job> Get(const std::string& job_id);
  // Follows the job's events until the stream ends (the job finished), `until`
  // returns true for an event, or `timeout` passes (so that a job that never ends fails
  // its test instead of hanging it); returns the events seen.
  std::vector<JobEvent> Watch(const std::string& job_id, const std::function<bool(const JobEvent&)>& until = nullptr,
                              int64_t after_sequence = 0, absl::Duration timeout = absl::Minutes(5));

 private:
  std::string state_dir_;
  std::vector<std::string> coordinator_flags_;
  std::string ca_cert_, client_token_;                        // Set by Secure.
  std::vector<std::string> security_flags_ = {"--insecure"};  // The coordinator's.
  int token_files_ = 0;
  std::string address_;
  int port_ = 0;
  std::unique_ptr<Subprocess> coordinator_;
  std::vector<std::unique_ptr<Subprocess>> workers_;
  std::unique_ptr<JobService::Stub> stub_;
};

// --data_root for a test's coordinator: the test's working directory (the runfiles) and the
// directory the committed corpus's files really lie in (runfiles are symlinks).
std::string DataRootsForTests();

// A small, quick job on the committed quickstart corpus.
JobSpec SmallJob(int workers, int epochs);

// The epoch results among `events`, in order.
std::vector<EpochResult> Epochs(const std::vector<JobEvent>& events);
// The last state change among `events` (JOB_STATE_UNSPECIFIED if none).
JobState FinalState(const std::vector<JobEvent>& events);

}  // namespace ddlm::testing

#endif  // DDLM_TESTS_CLUSTER_H_
