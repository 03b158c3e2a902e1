// ThreadSanitizer cannot see Debian's absl::Mutex: libabsl_synchronization is built
// without -fsanitize=thread, so TSan never learns that a Lock() follows the Unlock() before
// it and reports every access the mutex guards as a race. This library, linked into test
// binaries only under --config=tsan, interposes absl's out-of-line synchronization entry
// points: each forwards to the real one (found with dlsym(RTLD_NEXT)) and tells TSan the
// happens-before edge it creates, with __tsan_release before a mutex is given up and
// __tsan_acquire after it is taken. The binary exports these symbols (-rdynamic), so calls
// from inside Debian's libraries (gRPC's gpr_mu, absl::Notification's own mutex) pass
// through here too.
//
// It also names the uninstrumented libraries whose own internals TSan should not report
// (__tsan_default_suppressions below).
//
// Readers release on the same address as writers, so TSan also orders readers after one
// another: it may miss a race between two readers that write, never report a false one.
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/base/config.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace {

// "_ZN4absl<len><inline namespace>" + rest (with K after N for a const member function):
// the real symbol's mangled name.
template <typename Fn>
Fn Real(const char* rest, bool is_const = false) {
  const std::string start = is_const ? "_ZNK4absl" : "_ZN4absl";
#ifdef ABSL_OPTION_INLINE_NAMESPACE_NAME
#define DDLM_ABSL_STR2(x) #x
#define DDLM_ABSL_STR(x) DDLM_ABSL_STR2(x)
  const std::string ns = DDLM_ABSL_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  const std::string name = start + std::to_string(ns.size()) + ns + rest;
#else
  const std::string name = start + rest;
#endif
  void* symbol = dlsym(RTLD_NEXT, name.c_str());
  if (symbol == nullptr) {
    std::fprintf(stderr, "absl_sync_annotations: %s not found: %s\n", name.c_str(), dlerror());
    std::abort();
  }
  Fn fn;
  static_assert(sizeof(fn) == sizeof(symbol));
  std::memcpy(&fn, &symbol, sizeof(fn));
  return fn;
}

void Acquired(const void* mu) { __tsan_acquire(const_cast<void*>(mu)); }
void Releasing(const void* mu) { __tsan_release(const_cast<void*>(mu)); }

// absl evaluates a waiter's Condition in whichever thread holds the mutex at the time:
// the waiter itself, or another thread inside Unlock(). Each evaluation is a critical
// section of its own: acquire before it, release after it.
struct Guarded {
  const absl::Condition* cond;
  const absl::Mutex* mu;
};
bool EvalGuarded(void* arg) {
  const auto* g = static_cast<const Guarded*>(arg);
  Acquired(g->mu);
  const bool met = g->cond->Eval();
  Releasing(g->mu);
  return met;
}

}  // namespace

// TSan intercepts libc calls (memcpy, memmove, pthread_mutex_lock) even when made from a
// library that is not instrumented, and so reports that library's internal accesses,
// which it orders by atomics and spinlocks TSan cannot see: absl's Status payloads and
// deadlock graph, gRPC's
// and OpenSSL's buffers handed between gRPC's threads, protobuf parsing them, LibTorch's
// allocator and thread pool. A report whose stack passes through one of Debian's
// uninstrumented libraries below is dropped. A race between two threads of ddlm's own
// (instrumented) code is still reported; one between ddlm's code and such a library's
// (a message changed while gRPC serializes it) is not.
extern "C" const char* __tsan_default_suppressions() {
  return "race:libabsl_status.so\n"
         "race:libabsl_cord\n"  // libabsl_cord.so, libabsl_cord_internal.so, libabsl_cordz_*.so
         "race:libabsl_graphcycles_internal.so\n"
         "race:libgrpc.so\n"
         "race:libgpr.so\n"
         "race:libssl.so\n"
         "race:libcrypto.so\n"
         "race:libprotobuf.so\n"
         "race:libupb.so\n"
         "race:libtorch_cpu.so\n"
         "race:libgloo.so\n";
}

namespace absl {
ABSL_NAMESPACE_BEGIN

// The symbols below are member functions declared in absl's headers; defining them here
// gives them their real mangled names, and "rest" is what follows the namespace there.
#define DDLM_REAL(Type, rest, ...)           \
  static const auto real = Real<Type>(rest); \
  return real(__VA_ARGS__)
#define DDLM_REAL_CONST(Type, rest, ...)                        \
  static const auto real = Real<Type>(rest, /*is_const=*/true); \
  return real(__VA_ARGS__)

// The Condition handed on in place of `cond`.
#define DDLM_GUARDED(cond)        \
  Guarded guarded{&(cond), this}; \
  const Condition cond##_guarded(&EvalGuarded, &guarded)

void Mutex::Lock() {
  [this] { DDLM_REAL(void (*)(Mutex*), "5Mutex4LockEv", this); }();
  Acquired(this);
}
void Mutex::ReaderLock() {
  [this] { DDLM_REAL(void (*)(Mutex*), "5Mutex10ReaderLockEv", this); }();
  Acquired(this);
}
bool Mutex::TryLock() {
  const bool locked = [this] { DDLM_REAL(bool (*)(Mutex*), "5Mutex7TryLockEv", this); }();
  if (locked) Acquired(this);
  return locked;
}
bool Mutex::ReaderTryLock() {
  const bool locked = [this] { DDLM_REAL(bool (*)(Mutex*), "5Mutex13ReaderTryLockEv", this); }();
  if (locked) Acquired(this);
  return locked;
}
void Mutex::Unlock() {
  Releasing(this);
  DDLM_REAL(void (*)(Mutex*), "5Mutex6UnlockEv", this);
}
void Mutex::ReaderUnlock() {
  Releasing(this);
  DDLM_REAL(void (*)(Mutex*), "5Mutex12ReaderUnlockEv", this);
}

void Mutex::LockWhen(const Condition& cond) {
  DDLM_GUARDED(cond);
  [&] { DDLM_REAL(void (*)(Mutex*, const Condition&), "5Mutex8LockWhenERKNS0_9ConditionE", this, cond_guarded); }();
  Acquired(this);
}
void Mutex::ReaderLockWhen(const Condition& cond) {
  DDLM_GUARDED(cond);
  [&] {
    DDLM_REAL(void (*)(Mutex*, const Condition&), "5Mutex14ReaderLockWhenERKNS0_9ConditionE", this, cond_guarded);
  }();
  Acquired(this);
}
bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  DDLM_GUARDED(cond);
  const bool met = [&] {
    DDLM_REAL(bool (*)(Mutex*, const Condition&, Duration),
              "5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE", this, cond_guarded, timeout);
  }();
  Acquired(this);  // Held whether or not the condition became true.
  return met;
}
bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  DDLM_GUARDED(cond);
  const bool met = [&] {
    DDLM_REAL(bool (*)(Mutex*, const Condition&, Time), "5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE",
              this, cond_guarded, deadline);
  }();
  Acquired(this);
  return met;
}
bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, Duration timeout) {
  DDLM_GUARDED(cond);
  const bool met = [&] {
    DDLM_REAL(bool (*)(Mutex*, const Condition&, Duration),
              "5Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE", this, cond_guarded, timeout);
  }();
  Acquired(this);
  return met;
}
bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  DDLM_GUARDED(cond);
  const bool met = [&] {
    DDLM_REAL(bool (*)(Mutex*, const Condition&, Time),
              "5Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE", this, cond_guarded, deadline);
  }();
  Acquired(this);
  return met;
}

// Await gives the mutex up while it waits and takes it back before it returns; the
// guarded Condition's first evaluation, before the wait, releases it.
void Mutex::Await(const Condition& cond) {
  DDLM_GUARDED(cond);
  [&] { DDLM_REAL(void (*)(Mutex*, const Condition&), "5Mutex5AwaitERKNS0_9ConditionE", this, cond_guarded); }();
  Acquired(this);
}
bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  DDLM_GUARDED(cond);
  const bool met = [&] {
    DDLM_REAL(bool (*)(Mutex*, const Condition&, Duration), "5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE",
              this, cond_guarded, timeout);
  }();
  Acquired(this);
  return met;
}
bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  DDLM_GUARDED(cond);
  const bool met = [&] {
    DDLM_REAL(bool (*)(Mutex*, const Condition&, Time), "5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE", this,
              cond_guarded, deadline);
  }();
  Acquired(this);
  return met;
}

void CondVar::Wait(Mutex* mu) {
  Releasing(mu);
  [&] { DDLM_REAL(void (*)(CondVar*, Mutex*), "7CondVar4WaitEPNS0_5MutexE", this, mu); }();
  Acquired(mu);
}
bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  Releasing(mu);
  const bool timed_out = [&] {
    DDLM_REAL(bool (*)(CondVar*, Mutex*, Duration), "7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE", this, mu,
              timeout);
  }();
  Acquired(mu);
  return timed_out;
}
bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  Releasing(mu);
  const bool timed_out = [&] {
    DDLM_REAL(bool (*)(CondVar*, Mutex*, Time), "7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE", this, mu,
              deadline);
  }();
  Acquired(mu);
  return timed_out;
}

// Notify's store to notified_yet_ happens in uninstrumented code, and HasBeenNotified()
// (inline, instrumented) loads it with acquire: release on that atomic's address, which
// follows the mutex in the object.
static_assert(sizeof(Notification) == sizeof(Mutex) + sizeof(void*),
              "Notification's layout changed: fix the address of notified_yet_");
void Notification::Notify() {
  Releasing(this);
  Releasing(reinterpret_cast<const char*>(this) + sizeof(Mutex));
  DDLM_REAL(void (*)(Notification*), "12Notification6NotifyEv", this);
}
void Notification::WaitForNotification() const {
  [this] { DDLM_REAL_CONST(void (*)(const Notification*), "12Notification19WaitForNotificationEv", this); }();
  Acquired(this);
}
bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  const bool notified = [&] {
    DDLM_REAL_CONST(bool (*)(const Notification*, Duration),
                    "12Notification30WaitForNotificationWithTimeoutENS0_8DurationE", this, timeout);
  }();
  if (notified) Acquired(this);
  return notified;
}
bool Notification::WaitForNotificationWithDeadline(Time deadline) const {
  const bool notified = [&] {
    DDLM_REAL_CONST(bool (*)(const Notification*, Time), "12Notification31WaitForNotificationWithDeadlineENS0_4TimeE",
                    this, deadline);
  }();
  if (notified) Acquired(this);
  return notified;
}

#undef DDLM_GUARDED
#undef DDLM_REAL
#undef DDLM_REAL_CONST
ABSL_NAMESPACE_END
}  // namespace absl
