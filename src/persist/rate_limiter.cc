#include "persist/rate_limiter.h"

#include <algorithm>
#include <thread>

namespace reservoir::persist {

RateLimiter::RateLimiter(double per_sec, double burst)
    : rate_(per_sec), burst_(burst > 0 ? burst : 1.0), tokens_(0),
      last_(std::chrono::steady_clock::now()) {
  // Start with one token so the first operation does not wait, but not a full
  // bucket: a fresh limiter must not allow a burst above the rate.
  tokens_ = std::min(1.0, burst_);
}

void RateLimiter::refill(std::chrono::steady_clock::time_point now) {
  double dt = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  tokens_ = std::min(burst_, tokens_ + dt * rate_);
}

bool RateLimiter::acquire(double n, const std::atomic<bool>* stop) {
  if (rate_ <= 0) return true;
  std::unique_lock lk(mu_);
  for (;;) {
    if (stop && stop->load()) return false;
    refill(std::chrono::steady_clock::now());
    double need = std::min(n, burst_);
    if (tokens_ >= need) {
      tokens_ -= n;
      return true;
    }
    // In slices, to see `stop` soon.
    auto wait = std::min<std::chrono::duration<double>>(std::chrono::duration<double>((need - tokens_) / rate_),
                                                        std::chrono::milliseconds(100));
    lk.unlock();
    std::this_thread::sleep_for(wait);
    lk.lock();
  }
}

std::chrono::milliseconds RateLimiter::wait_time(double n) {
  if (rate_ <= 0) return std::chrono::milliseconds(0);
  std::lock_guard lk(mu_);
  refill(std::chrono::steady_clock::now());
  double need = std::min(n, burst_);
  if (tokens_ >= need) return std::chrono::milliseconds(0);
  return std::chrono::milliseconds(static_cast<int64_t>((need - tokens_) / rate_ * 1000) + 1);
}

}  // namespace reservoir::persist
