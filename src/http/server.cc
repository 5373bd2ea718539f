#include "http/server.h"

#include <cstring>

#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <atomic>
#include <cctype>

#include <fmt/format.h>

#include "common/log.h"

namespace reservoir::http {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

Result<std::pair<std::string, uint16_t>> split_host_port(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0) return invalid_argument("address '" + s + "' must be host:port");
  std::string host = s.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = 0;
  try {
    port = std::stoi(s.substr(colon + 1));
  } catch (...) {
    return invalid_argument("address '" + s + "' has a bad port");
  }
  if (port < 0 || port > 65535) return invalid_argument("address '" + s + "' has a bad port");
  return std::make_pair(host, static_cast<uint16_t>(port));
}

struct Server::Impl {
  Impl(asio::io_context& io, Limits l) : ioc(io), limits(l) {}
  asio::io_context& ioc;
  Limits limits;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::vector<std::unique_ptr<Handler>> handlers;
  std::atomic<int> active{0};
  // Open connections per listener: a full S3 listener must not lock out the admin one.
  std::vector<std::unique_ptr<std::atomic<int>>> conns;
  std::atomic<bool> draining{false};
};

namespace {

const char* reason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 416: return "Requested Range Not Satisfiable";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

std::string now_http_date() {
  time_t t = time(nullptr);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

template <class Stream>
auto& lowest(Stream& s) {
  return beast::get_lowest_layer(s);
}

using Parser = bhttp::request_parser<bhttp::buffer_body>;

template <class Stream>
class BeastBody : public BodyReader {
 public:
  BeastBody(Stream& s, beast::flat_buffer& buf, Parser& p, bool expect_continue, const Limits& limits)
      : s_(s), buf_(buf), p_(p), need_continue_(expect_continue), limits_(limits) {
    // A body of known length is read straight into the caller's buffer
    // (large reads, no copy through the parser's buffer).
    if (!p_.is_done() && !p_.chunked() && p_.content_length()) {
      direct_ = true;
      remaining_ = *p_.content_length();
    }
  }

  awaitable<Result<size_t>> read_some(char* out, size_t n) override {
    // "100 Continue" even for an empty body: botocore keeps the status of a
    // final response that arrived instead of it and misparses the next
    // response on the connection.
    if (need_continue_) {
      need_continue_ = false;
      static const std::string k100 = "HTTP/1.1 100 Continue\r\n\r\n";
      error_code ec;
      lowest(s_).expires_after(limits_.idle_timeout);
      co_await asio::async_write(s_, asio::buffer(k100), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return Status(Code::unavailable, "write 100-continue: " + ec.message(), "IncompleteBody");
    }
    if (direct_) {
      if (remaining_ == 0 || n == 0) co_return size_t{0};
      size_t want = static_cast<size_t>(std::min<uint64_t>(n, remaining_));
      size_t got = 0;
      if (buf_.size() > 0) {  // bytes that came with the header
        got = std::min(want, buf_.size());
        std::memcpy(out, buf_.data().data(), got);
        buf_.consume(got);
      } else {
        error_code ec;
        lowest(s_).expires_after(limits_.idle_timeout);
        got = co_await s_.async_read_some(asio::buffer(out, want), asio::redirect_error(asio::use_awaitable, ec));
        if (ec && got == 0) {
          failed_ = true;
          co_return Status(Code::invalid_argument, "request body: " + ec.message(), "IncompleteBody");
        }
      }
      remaining_ -= got;
      co_return got;
    }
    if (p_.is_done()) co_return size_t{0};
    while (!p_.is_done()) {
      p_.get().body().data = out;
      p_.get().body().size = n;
      error_code ec;
      lowest(s_).expires_after(limits_.idle_timeout);
      co_await bhttp::async_read_some(s_, buf_, p_, asio::redirect_error(asio::use_awaitable, ec));
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec) {
        failed_ = true;
        co_return Status(Code::invalid_argument, "request body: " + ec.message(), "IncompleteBody");
      }
      size_t got = n - p_.get().body().size;
      if (got > 0) co_return got;
    }
    co_return size_t{0};
  }
  std::optional<uint64_t> content_length() const override {
    auto cl = p_.content_length();
    if (cl) return *cl;
    return std::nullopt;
  }
  bool complete() const override { return direct_ ? remaining_ == 0 : p_.is_done(); }
  // Bytes of the body not read yet, if known.
  std::optional<uint64_t> remaining() const {
    if (direct_) return remaining_;
    auto r = p_.content_length_remaining();
    if (r) return *r;
    return std::nullopt;
  }
  bool failed() const { return failed_; }
  // The client still waits for "100 Continue" (the handler answered without
  // reading the body): the connection cannot be reused safely.
  bool continue_pending() const { return need_continue_; }

 private:
  Stream& s_;
  beast::flat_buffer& buf_;
  Parser& p_;
  bool need_continue_;
  const Limits& limits_;
  bool failed_ = false;
  bool direct_ = false;
  uint64_t remaining_ = 0;
};

template <class Stream>
class RawResponse : public ResponseWriter {
 public:
  RawResponse(Stream& s, bool head_only, const Limits& limits) : s_(s), head_only_(head_only), limits_(limits) {}

  awaitable<Status> send_head(int status, const Headers& headers, uint64_t length) override {
    head_sent_ = true;
    left_ = head_only_ ? 0 : length;
    head_ = fmt::format("HTTP/1.1 {} {}\r\nServer: Reservoir\r\nDate: {}\r\n", status, reason(status), now_http_date());
    for (auto& [k, v] : headers) {
      head_ += k;
      head_ += ": ";
      head_ += v;
      head_ += "\r\n";
    }
    if (status != 304 && status != 204) head_ += fmt::format("Content-Length: {}\r\n", length);
    if (close_) head_ += "Connection: close\r\n";
    head_ += "\r\n";
    if (left_ == 0) co_return co_await flush(nullptr, 0);
    co_return ok_status();
  }

  awaitable<Status> send_body(const char* data, size_t n) override {
    if (head_only_ || n == 0) co_return ok_status();
    if (n > left_) n = static_cast<size_t>(left_);
    left_ -= n;
    co_return co_await flush(data, n);
  }

  bool head_sent() const override { return head_sent_; }
  void close_after() override { close_ = true; }
  bool wants_close() const { return close_ || broken_; }
  bool finished() const { return head_sent_ && left_ == 0 && head_.empty(); }

 private:
  awaitable<Status> flush(const char* data, size_t n) {
    error_code ec;
    lowest(s_).expires_after(limits_.idle_timeout);
    if (!head_.empty()) {
      // One contiguous buffer: Boost 1.74's SSL stream reported success for a
      // two-buffer write over 16 KiB after sending only the first buffer.
      if (n <= 64 * 1024) {
        head_.append(data, n);
        co_await asio::async_write(s_, asio::buffer(head_), asio::redirect_error(asio::use_awaitable, ec));
        n = 0;
      } else {
        co_await asio::async_write(s_, asio::buffer(head_), asio::redirect_error(asio::use_awaitable, ec));
      }
      head_.clear();
      if (!ec && n > 0)
        co_await asio::async_write(s_, asio::buffer(data, n), asio::redirect_error(asio::use_awaitable, ec));
    } else {
      co_await asio::async_write(s_, asio::buffer(data, n), asio::redirect_error(asio::use_awaitable, ec));
    }
    if (ec) {
      broken_ = true;
      co_return unavailable("client connection: " + ec.message());
    }
    co_return ok_status();
  }

  Stream& s_;
  bool head_only_;
  const Limits& limits_;
  std::string head_;
  uint64_t left_ = 0;
  bool head_sent_ = false;
  bool close_ = false;
  bool broken_ = false;
};

Request to_request(const bhttp::request<bhttp::buffer_body>& m, bool tls) {
  Request r;
  r.method = std::string(m.method_string());
  r.target = std::string(m.target());
  auto q = r.target.find('?');
  r.raw_path = r.target.substr(0, q);
  r.raw_query = q == std::string::npos ? "" : r.target.substr(q + 1);
  for (auto& f : m) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers.emplace_back(std::move(name), std::string(f.value()));
  }
  r.tls = tls;
  return r;
}

template <class Stream>
awaitable<void> write_simple(Stream& s, int status, const std::string& body) {
  std::string msg = fmt::format(
      "HTTP/1.1 {} {}\r\nServer: Reservoir\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
      status, reason(status), body.size(), body);
  error_code ec;
  co_await asio::async_write(s, asio::buffer(msg), asio::redirect_error(asio::use_awaitable, ec));
}

// Serves requests on one connection until it closes. `impl` and `handler`
// are owned by the Server, which outlives every session (the io_context is
// stopped before the Server is destroyed).
template <class Stream>
awaitable<void> serve_requests(Stream& stream, Server::Impl* impl, Handler* handler, bool tls) {
  beast::flat_buffer buf;
  for (bool first = true;; first = false) {
    if (!first && buf.size() == 0) {
      // Between requests a kept-alive connection may idle for idle_timeout;
      // once a byte arrives, the whole header must follow within header_timeout.
      error_code ec;
      lowest(stream).expires_after(impl->limits.idle_timeout);
      size_t n = co_await stream.async_read_some(buf.prepare(16 * 1024), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      buf.commit(n);
    }
    Parser parser;
    parser.header_limit(static_cast<std::uint32_t>(impl->limits.max_header_bytes));
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    error_code ec;
    lowest(stream).expires_after(impl->limits.header_timeout);
    co_await bhttp::async_read_header(stream, buf, parser, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == bhttp::error::header_limit)
        co_await write_simple(stream, 400,
                              "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>RequestHeaderSectionTooLarge</Code>"
                              "<Message>Your request header section exceeds the maximum allowed size.</Message></Error>");
      else if (ec != bhttp::error::end_of_stream && ec != asio::error::operation_aborted && ec != beast::error::timeout &&
               ec != asio::error::eof && ec != asio::error::connection_reset && ec != ssl::error::stream_truncated) {
        LOG_DEBUG("bad request header: {}", ec.message());
        co_await write_simple(stream, 400,
                              "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>BadRequest</Code>"
                              "<Message>The request could not be parsed as HTTP/1.1.</Message></Error>");
      }
      co_return;
    }
    auto& msg = parser.get();
    // A transfer coding other than chunked (last) leaves the body unframed:
    // the parser would take it for none and read its bytes as the next
    // request; one before chunked (gzip, chunked) would be stored still
    // coded. Refused, and the connection closed (RFC 7230 3.3.3).
    if (msg.count(bhttp::field::transfer_encoding) &&
        (!parser.chunked() || !beast::iequals(msg[bhttp::field::transfer_encoding], "chunked"))) {
      co_await write_simple(stream, 501,
                            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NotImplemented</Code>"
                            "<Message>A header you provided implies functionality that is not implemented</Message>"
                            "<Header>Transfer-Encoding</Header></Error>");
      co_return;
    }
    Request req = to_request(msg, tls);
    bool expect_continue = beast::iequals(msg[bhttp::field::expect], "100-continue");
    BeastBody<Stream> body(stream, buf, parser, expect_continue, impl->limits);
    RawResponse<Stream> resp(stream, msg.method() == bhttp::verb::head, impl->limits);
    bool keep_alive = msg.keep_alive();
    if (!keep_alive || impl->draining) resp.close_after();
    impl->active++;
    bool crashed = false;
    try {
      co_await (*handler)(req, body, resp);
    } catch (const std::exception& e) {
      LOG_ERROR("handler failed on {} {}: {}", req.method, req.target, e.what());
      crashed = true;
    }
    if (crashed) {
      impl->active--;
      if (!resp.head_sent())
        co_await write_simple(stream, 500, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code></Error>");
      co_return;
    }
    impl->active--;
    if (resp.wants_close() || !resp.finished() || body.failed() || body.continue_pending()) co_return;
    if (!body.complete()) {
      // The handler answered without reading the body (an early error):
      // discard a small remainder to keep the connection, else close.
      auto cl = body.remaining();
      if (!cl || *cl > (1u << 20)) co_return;
      std::vector<char> sink(64 * 1024);
      while (!body.complete()) {
        auto r = co_await body.read_some(sink.data(), sink.size());
        if (!r.ok()) co_return;
      }
    }
    if (impl->draining) co_return;
  }
}

awaitable<void> plain_session(tcp::socket sock, Server::Impl* impl, Handler* handler, std::atomic<int>* conns) {
  beast::tcp_stream stream(std::move(sock));
  co_await serve_requests(stream, impl, handler, false);
  error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.close();
  (*conns)--;
}

awaitable<void> tls_session(tcp::socket sock, ssl::context* ctx, Server::Impl* impl, Handler* handler,
                            std::atomic<int>* conns) {
  beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(sock)), *ctx);
  error_code ec;
  lowest(stream).expires_after(impl->limits.header_timeout);
  co_await stream.async_handshake(ssl::stream_base::server, asio::redirect_error(asio::use_awaitable, ec));
  if (!ec) {
    co_await serve_requests(stream, impl, handler, true);
    lowest(stream).expires_after(std::chrono::seconds(2));
    co_await stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
  }
  lowest(stream).close();
  (*conns)--;
}

awaitable<void> accept_loop(tcp::acceptor* acc, Server::Impl* impl, Handler* handler, ssl::context* tls,
                            std::atomic<int>* conns) {
  for (;;) {
    error_code ec;
    // Each connection runs on a strand of its own: its stream's timer fires
    // on whichever network thread is free, and without the strand the
    // timer's close of the socket could run beside the session's own close
    // (two close() of one descriptor number, the second one possibly
    // closing a file opened meanwhile by another thread).
    asio::any_io_executor ex = asio::make_strand(impl->ioc);
    tcp::socket sock = co_await acc->async_accept(ex, asio::redirect_error(asio::use_awaitable, ec));
    if (impl->draining || ec == asio::error::operation_aborted) co_return;
    if (ec) continue;
    if (conns->load() >= impl->limits.max_connections) {
      sock.close(ec);
      continue;
    }
    sock.set_option(tcp::no_delay(true), ec);
    (*conns)++;
    if (tls)
      asio::co_spawn(ex, tls_session(std::move(sock), tls, impl, handler, conns), asio::detached);
    else
      asio::co_spawn(ex, plain_session(std::move(sock), impl, handler, conns), asio::detached);
  }
}

}  // namespace

Server::Server(asio::io_context& ioc, Limits limits) : impl_(std::make_unique<Impl>(ioc, limits)) {}
Server::~Server() = default;

Result<uint16_t> Server::listen(const std::string& host_port, Handler handler, ssl::context* tls) {
  auto hp = split_host_port(host_port);
  if (!hp.ok()) return hp.status();
  error_code ec;
  auto addr = asio::ip::make_address(hp->first == "localhost" ? "127.0.0.1" : hp->first, ec);
  if (ec) return invalid_argument("bad listen address '" + host_port + "': " + ec.message());
  // The accept loop and begin_drain's close of the acceptor take turns on
  // the acceptor's own strand.
  auto acc = std::make_unique<tcp::acceptor>(asio::make_strand(impl_->ioc));
  tcp::endpoint ep(addr, hp->second);
  acc->open(ep.protocol(), ec);
  if (!ec) acc->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc->bind(ep, ec);
  if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return unavailable("cannot listen on " + host_port + ": " + ec.message());
  uint16_t port = acc->local_endpoint().port();
  impl_->handlers.push_back(std::make_unique<Handler>(std::move(handler)));
  impl_->conns.push_back(std::make_unique<std::atomic<int>>(0));
  asio::co_spawn(acc->get_executor(),
                 accept_loop(acc.get(), impl_.get(), impl_->handlers.back().get(), tls, impl_->conns.back().get()),
                 asio::detached);
  impl_->acceptors.push_back(std::move(acc));
  return port;
}

void Server::begin_drain() {
  impl_->draining = true;
  for (auto& a : impl_->acceptors)
    asio::post(a->get_executor(), [acc = a.get()] {
      error_code ec;
      acc->close(ec);
    });
}

int Server::active_requests() const { return impl_->active.load(); }
int Server::open_connections() const {
  int n = 0;
  for (auto& c : impl_->conns) n += c->load();
  return n;
}

}  // namespace reservoir::http
