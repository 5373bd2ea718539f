#include "persist/rate_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace reservoir::persist {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

// Only lower bounds: a slow machine may take longer, never shorter.

TEST(rate_limiter_test, fresh_limiter_does_not_allow_a_burst_above_the_rate) {
  RateLimiter lim(100);
  auto t0 = Clock::now();
  for (int i = 0; i < 20; ++i) lim.acquire(1);
  // 20 tokens at 100/s from a fresh limiter: at least ~0.19 s.
  EXPECT_GE(seconds_since(t0), 0.15);
}

TEST(rate_limiter_test, request_larger_than_burst_leaves_debt) {
  RateLimiter lim(100);  // burst 10
  auto t0 = Clock::now();
  lim.acquire(20);  // allowed once ~burst tokens are there; the rest is debt
  lim.acquire(1);   // must wait for the debt to be repaid
  EXPECT_GE(seconds_since(t0), 0.15);
}

// A wait after a large object can be very long (its bytes are debt): a
// stop must end it, or the server's shutdown waits for it.
TEST(rate_limiter_test, a_stop_ends_a_long_wait) {
  RateLimiter lim(1);       // 1 byte/s
  EXPECT_TRUE(lim.acquire(1000));  // ~1000 s of debt
  std::atomic<bool> stop{false};
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    stop = true;
  });
  auto t0 = Clock::now();
  EXPECT_FALSE(lim.acquire(1, &stop));
  EXPECT_LT(seconds_since(t0), 30.0);
  stopper.join();
}

TEST(rate_limiter_test, wait_time_reports_without_taking) {
  RateLimiter lim(0.001, 1);  // one token per 1000 s
  EXPECT_EQ(lim.wait_time(1).count(), 0);  // one token to start with
  EXPECT_EQ(lim.wait_time(1).count(), 0);  // asking did not take it
  lim.acquire(1);
  EXPECT_GT(lim.wait_time(1).count(), 0);
}

TEST(rate_limiter_test, zero_rate_is_unlimited) {
  RateLimiter lim(0);
  EXPECT_EQ(lim.rate(), 0);
  for (int i = 0; i < 1000; ++i) lim.acquire(1e9);
  EXPECT_EQ(lim.wait_time(1e12).count(), 0);
}

}  // namespace reservoir::persist
