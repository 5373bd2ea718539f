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
#include <functional>
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

// Runs fn() on the blocking pool and resumes the coroutine on its own
// executor with the result. fn must not capture references to coroutine
// locals that die before it runs (the coroutine is suspended meanwhile, so
// its locals are alive).
template <typename F>
awaitable<std::invoke_result_t<F>> run_blocking(asio::thread_pool& pool, F fn) {
  using R = std::invoke_result_t<F>;
  auto ex = co_await asio::this_coro::executor;
  std::optional<R> out;
  co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
      [&pool, &fn, &out, ex](auto handler) mutable {
        asio::post(pool, [&fn, &out, ex, h = std::move(handler)]() mutable {
          out.emplace(fn());
          asio::post(ex, std::move(h));
        });
      },
      asio::use_awaitable);
  co_return std::move(*out);
}

}  // namespace reservoir::http
