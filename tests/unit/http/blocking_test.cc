// run_blocking and PendingJob: work on the blocking pool, resumed on the
// caller's executor, and exceptions that never escape on a pool thread.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <stdexcept>
#include <string>
#include <thread>

#include "http/io.h"

namespace reservoir::http {
namespace {

// Runs `body` as a coroutine on a fresh io_context until it finishes.
template <typename F>
void run_coroutine(F body) {
  asio::io_context ioc;
  std::exception_ptr failed;
  asio::co_spawn(ioc, body(), [&](std::exception_ptr e) { failed = e; });
  ioc.run();
  if (failed) std::rethrow_exception(failed);
}

TEST(blocking_test, the_result_comes_back_on_the_callers_thread) {
  asio::thread_pool pool(1);
  std::thread::id caller, worker, resumed;
  run_coroutine([&]() -> awaitable<void> {
    caller = std::this_thread::get_id();
    int v = co_await run_blocking(pool, [&] {
      worker = std::this_thread::get_id();
      return 42;
    });
    resumed = std::this_thread::get_id();
    EXPECT_EQ(v, 42);
  });
  EXPECT_NE(worker, caller);
  EXPECT_EQ(resumed, caller);
  pool.join();
}

TEST(blocking_test, an_exception_is_rethrown_in_the_awaiting_coroutine) {
  asio::thread_pool pool(1);
  std::string caught;
  run_coroutine([&]() -> awaitable<void> {
    try {
      (void)co_await run_blocking(pool, []() -> std::string { throw std::runtime_error("bad bytes"); });
    } catch (const std::runtime_error& e) {
      caught = e.what();
    }
  });
  EXPECT_EQ(caught, "bad bytes");
  pool.join();  // the pool thread is still alive: nothing escaped on it
}

TEST(blocking_test, an_exception_of_a_result_job_becomes_an_internal_error) {
  asio::thread_pool pool(1);
  Status got;
  run_coroutine([&]() -> awaitable<void> {
    Result<int> r = co_await run_blocking(pool, []() -> Result<int> { throw std::runtime_error("boom"); });
    got = r.status();
  });
  EXPECT_EQ(got.code(), Code::internal);
  EXPECT_NE(got.message().find("boom"), std::string::npos) << got.message();
  pool.join();
}

TEST(blocking_test, a_pending_job_that_throws_still_resumes_its_waiter) {
  asio::thread_pool pool(1);
  Status got;
  run_coroutine([&]() -> awaitable<void> {
    PendingJob<Status> job;
    job.start(pool, []() -> Status { throw std::runtime_error("disk gone"); });
    got = co_await job.wait();
  });
  EXPECT_EQ(got.code(), Code::internal);
  pool.join();
}

}  // namespace
}  // namespace reservoir::http
