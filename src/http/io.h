// The seam between the HTTP server and request handlers: a streamed request
// body and a streamed response, as coroutines. No Beast types here.
#pragma once

#include <utility>  // before asio: Boost 1.74 awaitable needs it

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/this_coro.hpp>

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "common/status.h"
#include "http/request.h"

namespace reservoir::http {

namespace asio = boost::asio;
template <typename T>
using awaitable = asio::awaitable<T>;

using Headers = std::vector<std::pair<std::string, std::string>>;

// The request body. read_some returns 0 at its end. The first read answers
// "Expect: 100-continue" if the client asked for it.
class BodyReader {
 public:
  virtual ~BodyReader() = default;
  virtual awaitable<Result<size_t>> read_some(char* buf, size_t n) = 0;
  virtual std::optional<uint64_t> content_length() const = 0;
  virtual bool complete() const = 0;
};

// The response. send_head once, then send_body any number of times with
// exactly `length` bytes in total.
class ResponseWriter {
 public:
  virtual ~ResponseWriter() = default;
  virtual awaitable<Status> send_head(int status, const Headers& headers, uint64_t length) = 0;
  virtual awaitable<Status> send_body(const char* data, size_t n) = 0;
  virtual bool head_sent() const = 0;
  // Ask the server to close the connection after this response.
  virtual void close_after() = 0;
};

using Handler = std::function<awaitable<void>(const Request&, BodyReader&, ResponseWriter&)>;

// f()'s result, or an internal error when it throws (for results that hold
// a Status: Status, Result<T>).
template <typename F>
std::invoke_result_t<F&> job_result(F& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    return internal_error(std::string("background job failed: ") + e.what());
  } catch (...) {
    return internal_error("background job failed");
  }
}

// Runs fn() on the blocking pool and resumes the awaiting coroutine on its
// own executor with the result. Not a coroutine itself: fn is moved into the
// posted work (GCC 12 mishandles class-type parameters of coroutines).
// Callers capture by reference ([&]): the awaiting coroutine stays suspended,
// so its locals outlive fn; by-value captures of class types made inside a
// coroutine body are miscompiled by GCC 12 (shallow copies).
// An exception of fn never escapes on the pool (a pool thread that throws
// terminates the process): it is rethrown in the awaiting coroutine, or, for
// a result that cannot be made empty (Result<T>), becomes an internal error.
template <typename F>
auto run_blocking(asio::thread_pool& pool, F fn) {
  using R = std::invoke_result_t<F>;
  constexpr bool rethrow = std::is_default_constructible_v<R>;
  static_assert(rethrow || std::is_constructible_v<R, Status>,
                "run_blocking: fn must return a default-constructible type or a Result");
  using Signature = std::conditional_t<rethrow, void(std::exception_ptr, R), void(R)>;
  return asio::async_initiate<decltype(asio::use_awaitable), Signature>(
      [&pool](auto handler, F f) {
        auto ex = asio::get_associated_executor(handler);
        asio::post(pool, [f = std::move(f), h = std::move(handler), ex]() mutable {
          if constexpr (rethrow) {
            std::exception_ptr e;
            R r{};
            try {
              r = f();
            } catch (...) {
              e = std::current_exception();
            }
            asio::post(ex, [h = std::move(h), e, r = std::move(r)]() mutable { std::move(h)(e, std::move(r)); });
          } else {
            R r = job_result(f);
            asio::post(ex, [h = std::move(h), r = std::move(r)]() mutable { std::move(h)(std::move(r)); });
          }
        });
      },
      asio::use_awaitable, std::move(fn));
}

// One piece of blocking work started on the pool while the coroutine that
// started it goes on (e.g. writing one buffer while reading the next);
// wait() resumes it with the result. At most one job at a time; the caller
// must wait() for a started job before what it references goes away.
template <typename R>
class PendingJob {
 public:
  template <typename F>
  void start(asio::thread_pool& pool, F fn) {
    asio::post(pool, [st = state_, f = std::move(fn)]() mutable {
      R r = job_result(f);  // a thrown job must still resume its waiter
      std::function<void(R)> waiter;
      {
        std::lock_guard lk(st->mu);
        if (st->waiter) waiter = std::move(st->waiter);
        else st->result = std::move(r);
      }
      if (waiter) waiter(std::move(r));
    });
    started_ = true;
  }
  bool started() const { return started_; }

  auto wait() {
    started_ = false;
    return asio::async_initiate<decltype(asio::use_awaitable), void(R)>(
        [st = state_](auto handler) {
          auto ex = asio::get_associated_executor(handler);
          auto h = std::make_shared<decltype(handler)>(std::move(handler));
          auto deliver = [h, ex](R r) {
            asio::post(ex, [h, r = std::move(r)]() mutable { std::move (*h)(std::move(r)); });
          };
          std::unique_lock lk(st->mu);
          if (st->result) {
            R r = std::move(*st->result);
            st->result.reset();
            lk.unlock();
            deliver(std::move(r));
          } else {
            st->waiter = std::move(deliver);
          }
        },
        asio::use_awaitable);
  }

 private:
  struct State {
    std::mutex mu;
    std::optional<R> result;
    std::function<void(R)> waiter;
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
  bool started_ = false;
};

}  // namespace reservoir::http
