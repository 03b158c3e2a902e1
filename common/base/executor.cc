#include "common/base/executor.h"

#include <pthread.h>

#include <cstdio>
#include <cstdlib>
#include <utility>

namespace ddlm {

bool InlineExecutor::Schedule(std::function<void()> task) {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return false;
    ++running_;
  }
  task();
  absl::MutexLock lock(&mu_);
  --running_;
  return true;
}

void InlineExecutor::Shutdown() {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_ == 0; };
  mu_.Await(absl::Condition(&idle));
}

ThreadExecutor::ThreadExecutor(const std::string& name) : thread_([this] { Run(); }), thread_id_(thread_.get_id()) {
  (void)pthread_setname_np(thread_.native_handle(), name.substr(0, 15).c_str());
}

ThreadExecutor::~ThreadExecutor() { Shutdown(); }

bool ThreadExecutor::Schedule(std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return false;
  tasks_.push_back(std::move(task));
  return true;
}

void ThreadExecutor::Shutdown() {
  if (OnThread()) {  // It would wait for itself.
    std::fprintf(stderr, "ThreadExecutor::Shutdown called from a task of its own\n");
    std::abort();
  }
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  absl::MutexLock joining(&join_mu_);
  if (thread_.joinable()) thread_.join();
}

bool ThreadExecutor::OnThread() const { return std::this_thread::get_id() == thread_id_; }

void ThreadExecutor::Run() {
  for (;;) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !tasks_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (tasks_.empty()) return;  // Stopping, and every queued task has run.
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

}  // namespace ddlm
