// HTTP/1.1 server on Boost.Beast with C++20 coroutines.
//
// Reads each request's header first (bounded size and time, so a slowloris
// client cannot hold a connection), hands a streaming body reader and
// response writer to the handler, keeps connections alive, and drains
// gracefully: after begin_drain() no connection is accepted, idle ones close,
// and busy ones close after their current response.
#pragma once

#include <utility>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <memory>
#include <string>

#include "http/io.h"

namespace boost::asio::ssl { class context; }

namespace reservoir::http {

struct Limits {
  uint64_t max_header_bytes = 16 * 1024;
  int max_connections = 4096;
  std::chrono::milliseconds header_timeout{30'000};
  std::chrono::milliseconds idle_timeout{60'000};
};

class Server {
 public:
  Server(asio::io_context& ioc, Limits limits);
  ~Server();

  // Binds host:port now (port 0 picks a free one). `tls`, when given, must
  // outlive the server. Returns the bound port.
  Result<uint16_t> listen(const std::string& host_port, Handler handler, asio::ssl::context* tls = nullptr);
  void begin_drain();
  // Requests being handled right now.
  int active_requests() const;
  int open_connections() const;

  struct Impl;  // defined in server.cc

 private:
  std::unique_ptr<Impl> impl_;
};

// Splits "host:port"; error on a malformed address.
Result<std::pair<std::string, uint16_t>> split_host_port(const std::string& s);

}  // namespace reservoir::http
