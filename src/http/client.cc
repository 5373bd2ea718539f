#include "http/client.h"

#include <cstring>

#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <cctype>
#include <mutex>

#include <fmt/format.h>

namespace reservoir::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;

const std::string* ClientResponse::header(const std::string& name) const {
  for (auto& [k, v] : headers)
    if (k == name) return &v;
  return nullptr;
}

Result<ClientOptions> parse_endpoint(const std::string& url) {
  ClientOptions o;
  std::string rest;
  if (url.rfind("http://", 0) == 0) {
    o.scheme = "http";
    rest = url.substr(7);
    o.port = 80;
  } else if (url.rfind("https://", 0) == 0) {
    o.scheme = "https";
    rest = url.substr(8);
    o.port = 443;
  } else {
    return invalid_argument("endpoint '" + url + "' must start with http:// or https://");
  }
  auto slash = rest.find('/');
  if (slash != std::string::npos) rest = rest.substr(0, slash);
  auto colon = rest.rfind(':');
  if (colon != std::string::npos && rest.find(']') == std::string::npos) {
    try {
      o.port = static_cast<uint16_t>(std::stoi(rest.substr(colon + 1)));
    } catch (...) {
      return invalid_argument("endpoint '" + url + "' has a bad port");
    }
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return invalid_argument("endpoint '" + url + "' has no host");
  o.host = rest;
  return o;
}

struct HttpClient::Conn {
  asio::io_context ioc;
  std::unique_ptr<beast::tcp_stream> tcp;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buf;
  Clock::time_point idle_since;

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *tcp; }

  // Runs one asynchronous operation to completion on this connection's own
  // io_context, bounded by `timeout`.
  template <typename Start>
  error_code run(std::chrono::milliseconds timeout, Start start) {
    error_code result = asio::error::would_block;
    lowest().expires_after(timeout);
    start([&result](error_code ec, auto&&...) { result = ec; });
    ioc.restart();
    ioc.run();
    return result;
  }
};

struct HttpClient::Pool {
  std::mutex mu;
  std::vector<std::unique_ptr<Conn>> idle;
  std::unique_ptr<ssl::context> tls;
};

namespace {

Status net_error(const std::string& what, const error_code& ec) {
  return unavailable(fmt::format("{}: {}", what, ec.message()));
}

}  // namespace

HttpClient::HttpClient(ClientOptions opts) : opts_(std::move(opts)), pool_(std::make_unique<Pool>()) {
  if (opts_.scheme == "https") {
    pool_->tls = std::make_unique<ssl::context>(ssl::context::tls_client);
    error_code ec;
    pool_->tls->set_default_verify_paths(ec);
    if (!opts_.ca_file.empty()) pool_->tls->load_verify_file(opts_.ca_file, ec);
    pool_->tls->set_verify_mode(opts_.verify_tls ? ssl::verify_peer : ssl::verify_none);
  }
}

HttpClient::~HttpClient() = default;

std::string HttpClient::host_header() const {
  bool default_port = (opts_.scheme == "http" && opts_.port == 80) || (opts_.scheme == "https" && opts_.port == 443);
  return default_port ? opts_.host : fmt::format("{}:{}", opts_.host, opts_.port);
}

std::unique_ptr<HttpClient::Conn> HttpClient::take() {
  std::lock_guard lk(pool_->mu);
  while (!pool_->idle.empty()) {
    auto c = std::move(pool_->idle.back());
    pool_->idle.pop_back();
    // Servers close idle connections after a few seconds; do not race them.
    if (Clock::now() - c->idle_since < std::chrono::seconds(4)) return c;
  }
  return nullptr;
}

void HttpClient::give_back(std::unique_ptr<Conn> c) {
  c->idle_since = Clock::now();
  std::lock_guard lk(pool_->mu);
  if (pool_->idle.size() < opts_.max_idle) pool_->idle.push_back(std::move(c));
}

// The response side of one exchange; returns the connection to the pool
// when the body was read to its end on a keep-alive connection.
class PooledResponse : public ResponseStream {
 public:
  PooledResponse(HttpClient* client, std::unique_ptr<HttpClient::Conn> conn, bool head)
      : client_(client), conn_(std::move(conn)) {
    parser_.body_limit(std::numeric_limits<std::uint64_t>::max());
    parser_.header_limit(64 * 1024);
    if (head) parser_.skip(true);
  }

  Status read_header() {
    error_code ec = conn_->run(client_->options().io_timeout, [&](auto h) {
      if (conn_->tls) bhttp::async_read_header(*conn_->tls, conn_->buf, parser_, std::move(h));
      else bhttp::async_read_header(*conn_->tcp, conn_->buf, parser_, std::move(h));
    });
    if (ec) return net_error("read response header", ec);
    auto& msg = parser_.get();
    resp_.status = static_cast<int>(msg.result_int());
    for (auto& f : msg) {
      std::string name(f.name_string());
      for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      resp_.headers.emplace_back(std::move(name), std::string(f.value()));
    }
    // A body of known length is read straight from the socket into the
    // caller's buffer (large reads, no copy through the parser).
    if (!parser_.is_done() && !parser_.chunked() && parser_.content_length()) {
      direct_ = true;
      remaining_ = *parser_.content_length();
      keep_alive_ = msg.keep_alive();
    }
    maybe_release();
    return ok_status();
  }

  const ClientResponse& response() const override { return resp_; }

  Result<size_t> read(char* out, size_t n) override {
    if (direct_) return read_direct(out, n);
    while (conn_ && !parser_.is_done()) {
      parser_.get().body().data = out;
      parser_.get().body().size = n;
      error_code ec = conn_->run(client_->options().io_timeout, [&](auto h) {
        if (conn_->tls) bhttp::async_read_some(*conn_->tls, conn_->buf, parser_, std::move(h));
        else bhttp::async_read_some(*conn_->tcp, conn_->buf, parser_, std::move(h));
      });
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec) {
        conn_.reset();
        return net_error("read response body", ec);
      }
      size_t got = n - parser_.get().body().size;
      maybe_release();
      if (got > 0) return got;
    }
    return size_t{0};
  }

  Result<size_t> read_direct(char* out, size_t n) {
    if (!conn_ || remaining_ == 0 || n == 0) return size_t{0};
    size_t want = static_cast<size_t>(std::min<uint64_t>(n, remaining_));
    size_t got = 0;
    if (conn_->buf.size() > 0) {  // bytes that came with the header
      got = std::min(want, conn_->buf.size());
      std::memcpy(out, conn_->buf.data().data(), got);
      conn_->buf.consume(got);
    } else {
      error_code ec = conn_->run(client_->options().io_timeout, [&](auto h) {
        auto b = asio::buffer(out, want);
        if (conn_->tls) conn_->tls->async_read_some(b, [&got, h = std::move(h)](error_code e, size_t k) mutable {
          got = k;
          h(e);
        });
        else conn_->tcp->async_read_some(b, [&got, h = std::move(h)](error_code e, size_t k) mutable {
          got = k;
          h(e);
        });
      });
      if (ec && got == 0) {
        conn_.reset();
        return net_error("read response body", ec);
      }
    }
    remaining_ -= got;
    if (remaining_ == 0) {
      if (keep_alive_ && conn_->buf.size() == 0) client_->give_back(std::move(conn_));
      conn_.reset();
    }
    return got;
  }

 private:
  void maybe_release() {
    if (direct_) return;
    if (conn_ && parser_.is_done()) {
      if (parser_.get().keep_alive()) client_->give_back(std::move(conn_));
      conn_.reset();
    }
  }

  HttpClient* client_;
  std::unique_ptr<HttpClient::Conn> conn_;
  bhttp::response_parser<bhttp::buffer_body> parser_;
  ClientResponse resp_;
  bool direct_ = false;     // reading a Content-Length body past the parser
  bool keep_alive_ = false;
  uint64_t remaining_ = 0;
};

Result<std::unique_ptr<ResponseStream>> HttpClient::open(const std::string& method, const std::string& target,
                                                         const ClientHeaders& headers, const BodySource& body,
                                                         uint64_t length) {
  bool reused = false;
  auto r = open_once(method, target, headers, body, length, reused);
  // A pooled connection the server closed meanwhile fails before any answer:
  // a request without a body is safe to send again on a new connection.
  if (!r.ok() && reused && !body && r.status().code() == Code::unavailable)
    r = open_once(method, target, headers, body, length, reused);
  return r;
}

Result<std::unique_ptr<ResponseStream>> HttpClient::open_once(const std::string& method, const std::string& target,
                                                              const ClientHeaders& headers, const BodySource& body,
                                                              uint64_t length, bool& reused) {
  auto conn = take();
  reused = conn != nullptr;
  if (!conn) {
    conn = std::make_unique<Conn>();
    tcp::resolver resolver(conn->ioc);
    error_code ec;
    auto eps = resolver.resolve(opts_.host, std::to_string(opts_.port), ec);
    if (ec) return net_error("resolve " + opts_.host, ec);
    if (pool_->tls) {
      conn->tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(conn->ioc, *pool_->tls);
      if (!SSL_set_tlsext_host_name(conn->tls->native_handle(), opts_.host.c_str()))
        return unavailable("cannot set TLS server name");
      if (opts_.verify_tls) conn->tls->set_verify_callback(ssl::host_name_verification(opts_.host));
    } else {
      conn->tcp = std::make_unique<beast::tcp_stream>(conn->ioc);
    }
    ec = conn->run(opts_.connect_timeout, [&](auto h) { conn->lowest().async_connect(eps, std::move(h)); });
    if (ec) return net_error(fmt::format("connect {}:{}", opts_.host, opts_.port), ec);
    conn->lowest().socket().set_option(tcp::no_delay(true), ec);
    if (conn->tls) {
      ec = conn->run(opts_.connect_timeout, [&](auto h) { conn->tls->async_handshake(ssl::stream_base::client, std::move(h)); });
      if (ec) return net_error("TLS handshake with " + opts_.host, ec);
    }
  }
  std::string head = fmt::format("{} {} HTTP/1.1\r\n", method, target);
  bool has_host = false;
  for (auto& [k, v] : headers) {
    std::string lk = k;
    for (auto& ch : lk) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (lk == "host") has_host = true;
    if (lk == "content-length") continue;
    head += k + ": " + v + "\r\n";
  }
  if (!has_host) head += "Host: " + host_header() + "\r\n";
  if (body || method == "PUT" || method == "POST") head += fmt::format("Content-Length: {}\r\n", length);
  head += "\r\n";
  auto write = [&](const char* p, size_t n) {
    return conn->run(opts_.io_timeout, [&](auto h) {
      if (conn->tls) asio::async_write(*conn->tls, asio::buffer(p, n), std::move(h));
      else asio::async_write(*conn->tcp, asio::buffer(p, n), std::move(h));
    });
  };
  error_code ec = write(head.data(), head.size());
  if (ec) return net_error("send request", ec);
  if (body && length > 0) {
    std::vector<char> buf(static_cast<size_t>(std::min<uint64_t>(length, 1 << 20)));
    uint64_t sent = 0;
    while (sent < length) {
      auto n = body(buf.data(), static_cast<size_t>(std::min<uint64_t>(buf.size(), length - sent)));
      if (!n.ok()) return n.status();
      if (*n == 0) return internal_error(fmt::format("request body ended after {} of {} bytes", sent, length));
      ec = write(buf.data(), *n);
      if (ec) return net_error("send request body", ec);
      sent += *n;
    }
  }
  auto resp = std::make_unique<PooledResponse>(this, std::move(conn), method == "HEAD");
  RETURN_IF_ERROR(resp->read_header());
  return std::unique_ptr<ResponseStream>(std::move(resp));
}

Result<ClientResponse> HttpClient::fetch(const std::string& method, const std::string& target,
                                         const ClientHeaders& headers, std::string* body_out, const BodySource& body,
                                         uint64_t length, size_t max_body) {
  auto r = open(method, target, headers, body, length);
  if (!r.ok()) return r.status();
  std::string sink;
  std::string& out = body_out ? *body_out : sink;
  char buf[65536];
  for (;;) {
    auto n = (*r)->read(buf, sizeof buf);
    if (!n.ok()) return n.status();
    if (*n == 0) break;
    if (out.size() + *n <= max_body) out.append(buf, *n);
  }
  return (*r)->response();
}

}  // namespace reservoir::http
