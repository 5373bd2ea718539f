// Token-bucket rate limiter for operations or bytes per second. Blocking;
// thread-safe. A rate of 0 means unlimited.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>

namespace reservoir::persist {

class RateLimiter {
 public:
  // `burst`: tokens that may accumulate while idle. The default, 1, spaces
  // operations 1/rate apart, so no one-second window holds more than the rate.
  explicit RateLimiter(double per_sec, double burst = 0);
  // Blocks until n tokens are available, then takes them. Requests larger
  // than the burst are allowed and leave the bucket in debt. False (nothing
  // taken) once `stop` is set: a wait after a large object can be long.
  bool acquire(double n, const std::atomic<bool>* stop = nullptr);
  // Time until n tokens would be available (0 = now), without taking them.
  std::chrono::milliseconds wait_time(double n);
  double rate() const { return rate_; }

 private:
  void refill(std::chrono::steady_clock::time_point now);
  std::mutex mu_;
  double rate_;
  double burst_;
  double tokens_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace reservoir::persist
