// A blocking HTTP/1.1 client for under stores and the command line: kept-alive
// pooled connections, HTTPS with certificate checks, streaming request and
// response bodies, and a timeout on every network operation.
//
// Thread-safe: each call takes a connection from the pool (or opens one) and
// returns it when the exchange completed cleanly.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace reservoir::http {

using ClientHeaders = std::vector<std::pair<std::string, std::string>>;

struct ClientOptions {
  std::string scheme = "http";  // http | https
  std::string host;             // connect to (and Host header unless overridden)
  uint16_t port = 80;
  std::string ca_file;          // https: extra CA bundle (e.g. AWS_CA_BUNDLE); "" = system store
  bool verify_tls = true;
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds io_timeout{60'000};  // each read/write step
  size_t max_idle = 64;         // pooled idle connections
};

// Parses "http://host:port" / "https://host" into options (port defaults by scheme).
Result<ClientOptions> parse_endpoint(const std::string& url);

// The request body as a pull stream: read() returns 0 at the end.
using BodySource = std::function<Result<size_t>(char* buf, size_t n)>;

struct ClientResponse {
  int status = 0;
  ClientHeaders headers;  // names lower-case
  const std::string* header(const std::string& lower_name) const;
};

// An open response whose body is read piece by piece; dropping it early
// closes the connection.
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;
  virtual const ClientResponse& response() const = 0;
  // 0 at the end of the body.
  virtual Result<size_t> read(char* buf, size_t n) = 0;
};

class HttpClient {
 public:
  explicit HttpClient(ClientOptions opts);
  ~HttpClient();

  // Sends method/target with headers (a Host header is added if absent) and a
  // body of `length` bytes pulled from `body` (nullptr: no body), and opens the
  // response. Network failures are Status unavailable.
  Result<std::unique_ptr<ResponseStream>> open(const std::string& method, const std::string& target,
                                               const ClientHeaders& headers, const BodySource& body = nullptr,
                                               uint64_t length = 0);
  // Like open(), reading the whole response body (up to max_body bytes) into `body_out`.
  Result<ClientResponse> fetch(const std::string& method, const std::string& target, const ClientHeaders& headers,
                               std::string* body_out, const BodySource& body = nullptr, uint64_t length = 0,
                               size_t max_body = 16 << 20);
  const ClientOptions& options() const { return opts_; }
  // "host:port" as it goes in the Host header (port omitted when default).
  std::string host_header() const;

  struct Conn;  // defined in client.cc

 private:
  Result<std::unique_ptr<ResponseStream>> open_once(const std::string& method, const std::string& target,
                                                    const ClientHeaders& headers, const BodySource& body,
                                                    uint64_t length, bool& reused);
  std::unique_ptr<Conn> take();
  void give_back(std::unique_ptr<Conn> c);
  friend class PooledResponse;

  ClientOptions opts_;
  struct Pool;
  std::unique_ptr<Pool> pool_;
};

}  // namespace reservoir::http
