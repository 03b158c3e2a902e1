#ifndef DDLM_COMMON_BASE_EXECUTOR_H_
#define DDLM_COMMON_BASE_EXECUTOR_H_

// Where a piece of work runs. An Executor takes tasks and runs each exactly once, in the
// order given, or drops it if it was shut down first:
//   - InlineExecutor runs a task at once, on the caller's thread (tests that want every
//     step to happen inside the call that caused it);
//   - ThreadExecutor runs tasks one at a time on a thread of its own, so the caller
//     never waits for them.
//
// Threading: Schedule and Shutdown are thread-safe. A task may call Schedule (it runs
// after the tasks already queued); it must not call Shutdown or destroy its executor.

#include <deque>
#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace ddlm {

class Executor {
 public:
  virtual ~Executor() = default;
  // Runs `task` once, or drops it and returns false after Shutdown.
  virtual bool Schedule(std::function<void()> task) = 0;
  // Takes no more tasks, runs those already queued, and returns once none is running.
  virtual void Shutdown() = 0;
};

class InlineExecutor : public Executor {
 public:
  bool Schedule(std::function<void()> task) override ABSL_LOCKS_EXCLUDED(mu_);
  void Shutdown() override ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
};

class ThreadExecutor : public Executor {
 public:
  // `name` names the thread (for debuggers and `top -H`; at most 15 characters kept).
  explicit ThreadExecutor(const std::string& name);
  ~ThreadExecutor() override;  // Shutdown.
  ThreadExecutor(const ThreadExecutor&) = delete;
  ThreadExecutor& operator=(const ThreadExecutor&) = delete;

  bool Schedule(std::function<void()> task) override ABSL_LOCKS_EXCLUDED(mu_);
  void Shutdown() override ABSL_LOCKS_EXCLUDED(mu_);
  // Whether the caller is this executor's thread.
  bool OnThread() const;

 private:
  void Run() ABSL_LOCKS_EXCLUDED(mu_);

  absl::Mutex mu_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Mutex join_mu_;  // One Shutdown joins; the others wait for it.
  std::thread thread_;
  std::thread::id thread_id_;  // Set once, before any task runs.
};

}  // namespace ddlm

#endif  // DDLM_COMMON_BASE_EXECUTOR_H_
