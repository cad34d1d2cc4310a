// Mutex and MutexLock: std::mutex with clang's thread-safety annotations, so that GUARDED_BY fields are checked
// by the compiler (clang -Wthread-safety, which scripts/lint.sh turns on) instead of by comments. A field read
// without its mutex held is a finding.
//
//   Mutex mu_;
//   int open_ GUARDED_BY(mu_) = 0;
//   void Add() EXCLUDES(mu_) { MutexLock lock(mu_); ++open_; }
//
// MutexLock::Wait waits on a condition_variable_any with the lock held around the predicate, as the analysis
// expects. With GCC the annotations compile to nothing.
//
// Thread safety: Mutex is a mutex; MutexLock belongs to the thread that made it.
#pragma once

#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define FF_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define FF_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) FF_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY FF_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) FF_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) FF_THREAD_ANNOTATION(pt_guarded_by(x))
#define REQUIRES(...) FF_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define ACQUIRE(...) FF_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) FF_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define EXCLUDES(...) FF_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) FF_THREAD_ANNOTATION(assert_capability(x))
#define NO_THREAD_SAFETY_ANALYSIS FF_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace fluidfaas {

class CAPABILITY("mutex") Mutex {
 public:
  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }
  // Tells the analysis the caller holds it (inside a predicate run by Wait, say).
  void AssertHeld() const ASSERT_CAPABILITY(this) {}

 private:
  std::mutex mu_;
};

class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() RELEASE() { mu_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  // Waits until `ready()` (called with the lock held); the lock is held again on return.
  template <typename Predicate>
  void Wait(std::condition_variable_any& cv, Predicate ready) {
    cv.wait(mu_, [&] {
      mu_.AssertHeld();
      return ready();
    });
  }
  // As Wait, for at most `timeout`; returns ready().
  template <typename Rep, typename Period, typename Predicate>
  bool WaitFor(std::condition_variable_any& cv, std::chrono::duration<Rep, Period> timeout, Predicate ready) {
    return cv.wait_for(mu_, timeout, [&] {
      mu_.AssertHeld();
      return ready();
    });
  }

 private:
  Mutex& mu_;
};

}  // namespace fluidfaas
