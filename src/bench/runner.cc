// The bench load generator on Asio coroutines and Beast. Each worker is one
// coroutine owning one kept-alive connection; workers are spread over one
// io_context per thread and share nothing but a few atomics of the step.
#include <utility>  // before asio: Boost 1.74 awaitable needs it

#include "bench/runner.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <limits>
#include <memory>
#include <random>
#include <thread>
#include <unistd.h>

#include "http/request.h"
#include "s3/sigv4.h"

namespace reservoir::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr auto kIoTimeout = std::chrono::seconds(120);
constexpr size_t kMaxWrite = 4 << 20;     // bytes per async_write of a large body
constexpr size_t kMaxCapture = 64 << 10;  // error bodies and small XML answers

// One kept-alive connection of one worker.
struct Conn {
  explicit Conn(const asio::any_io_executor& ex) : stream(ex), chunk(1 << 20) {}
  beast::tcp_stream stream;
  beast::flat_buffer buf;
  std::vector<char> chunk;  // response bodies are read into this and dropped
  bool open = false;

  void close() {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream.close();
    buf.clear();
    open = false;
  }
};

struct Req {
  const char* method = "GET";
  std::string path;   // "/bucket/key", already URI-safe
  std::string query;  // "" or "uploads", "partNumber=1&uploadId=..."
  // The body: a slice of the dataset, or `body_str` when not null.
  uint64_t body_off = 0, body_len = 0;
  const std::string* body_str = nullptr;
  bool capture_body = false;  // keep a small 2xx body (XML) in Resp::body
  // Expected response body (GET): its length always checked, bytes when verify.
  bool expect = false, verify = false;
  uint64_t expect_off = 0, expect_len = 0;
};

struct Resp {
  int status = 0;
  std::string net_error;  // a network failure; status is 0 then
  uint64_t body_bytes = 0;
  std::optional<uint64_t> content_length;
  bool mismatch = false;  // body differs from the expectation
  std::string body;       // error body, or the 2xx body when capture_body
  std::string etag;
};

std::string head_of(const Endpoint& ep, const Req& r, uint64_t content_length, bool has_body) {
  http::Request hr;
  hr.method = r.method;
  hr.raw_path = r.path;
  hr.raw_query = r.query;
  hr.target = r.query.empty() ? r.path : r.path + "?" + r.query;
  hr.headers.emplace_back("host", ep.host + ":" + std::to_string(ep.port));
  if (has_body) hr.headers.emplace_back("content-length", std::to_string(content_length));
  if (!ep.anonymous)
    s3::sign_request(hr, ep.access_key, ep.secret_key, ep.region, "UNSIGNED-PAYLOAD",
                     std::chrono::system_clock::now());
  std::string out;
  out.reserve(512);
  out += hr.method;
  out += ' ';
  out += hr.target;
  out += " HTTP/1.1\r\n";
  for (const auto& [k, v] : hr.headers) {
    out += k;
    out += ": ";
    out += v;
    out += "\r\n";
  }
  out += "\r\n";
  return out;
}

// Writes the head and the body of r. Not a retry point: the caller decides.
awaitable<void> write_request(Conn& c, const Dataset& ds, const std::string& head, const Req& r,
                              beast::error_code& ec) {
  c.stream.expires_after(kIoTimeout);
  if (r.body_str) {
    std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(*r.body_str)};
    co_await asio::async_write(c.stream, bufs, asio::redirect_error(use_awaitable, ec));
    co_return;
  }
  uint64_t sent = 0;
  uint64_t pos = r.body_len ? r.body_off % ds.data.size() : 0;
  bool head_sent = false;
  while (!ec && (!head_sent || sent < r.body_len)) {
    size_t n = static_cast<size_t>(std::min<uint64_t>({r.body_len - sent, ds.data.size() - pos, kMaxWrite}));
    std::array<asio::const_buffer, 2> bufs{asio::buffer(head_sent ? nullptr : head.data(), head_sent ? 0 : head.size()),
                                           asio::buffer(ds.data.data() + pos, n)};
    c.stream.expires_after(kIoTimeout);
    co_await asio::async_write(c.stream, bufs, asio::redirect_error(use_awaitable, ec));
    head_sent = true;
    sent += n;
    pos = (pos + n) % ds.data.size();
  }
}

// Reads one response, streaming its body through the connection's chunk.
awaitable<void> read_response(Conn& c, const Dataset& ds, const Req& r, Resp& out, beast::error_code& ec) {
  bhttp::response_parser<bhttp::buffer_body> p;
  p.body_limit(std::numeric_limits<std::uint64_t>::max());
  if (std::strcmp(r.method, "HEAD") == 0) p.skip(true);
  c.stream.expires_after(kIoTimeout);
  co_await bhttp::async_read_header(c.stream, c.buf, p, asio::redirect_error(use_awaitable, ec));
  if (ec) co_return;
  out.status = static_cast<int>(p.get().result_int());
  if (auto cl = p.content_length()) out.content_length = *cl;
  if (auto it = p.get().find(bhttp::field::etag); it != p.get().end()) out.etag = std::string(it->value());
  bool capture = r.capture_body || out.status >= 300;
  bool check = r.expect && out.status < 300;
  auto consume = [&](const char* data, size_t got) {
    if (capture && out.body.size() < kMaxCapture)
      out.body.append(data, std::min(got, kMaxCapture - out.body.size()));
    if (check && r.verify && !out.mismatch) {
      if (out.body_bytes + got > r.expect_len || !ds.matches(r.expect_off, out.body_bytes, data, got))
        out.mismatch = true;
    }
    out.body_bytes += got;
  };
  if (!p.is_done() && out.content_length && !p.chunked()) {
    // A body of known length: bypass the parser, which would copy it from
    // the connection buffer in reads of that buffer's (small) capacity.
    uint64_t left = *out.content_length;
    bool keep_alive = p.get().keep_alive();
    size_t have = static_cast<size_t>(std::min<uint64_t>(c.buf.size(), left));
    if (have) {
      auto data = c.buf.data();
      consume(static_cast<const char*>(data.data()), have);
      c.buf.consume(have);
      left -= have;
    }
    while (left > 0) {
      c.stream.expires_after(kIoTimeout);
      size_t want = static_cast<size_t>(std::min<uint64_t>(left, c.chunk.size()));
      size_t got = co_await c.stream.async_read_some(asio::buffer(c.chunk.data(), want),
                                                     asio::redirect_error(use_awaitable, ec));
      if (ec) co_return;
      consume(c.chunk.data(), got);
      left -= got;
    }
    if (check && out.body_bytes != r.expect_len) out.mismatch = true;
    if (!keep_alive) c.close();
    co_return;
  }
  while (!p.is_done()) {
    p.get().body().data = c.chunk.data();
    p.get().body().size = c.chunk.size();
    c.stream.expires_after(kIoTimeout);
    co_await bhttp::async_read(c.stream, c.buf, p, asio::redirect_error(use_awaitable, ec));
    if (ec == bhttp::error::need_buffer) ec.clear();
    if (ec) co_return;
    consume(c.chunk.data(), c.chunk.size() - p.get().body().size);
  }
  if (check && out.body_bytes != r.expect_len) out.mismatch = true;
  if (!p.get().keep_alive()) c.close();
}

// One request and its response on c, reconnecting once if a kept-alive
// connection turns out to be closed by the server.
awaitable<void> exchange(Conn& c, const Endpoint& ep, const tcp::endpoint& addr, const Dataset& ds, const Req& r,
                         Resp& out) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    out = Resp{};
    beast::error_code ec;
    bool reused = c.open;
    if (!c.open) {
      c.buf.clear();
      c.stream.expires_after(kIoTimeout);
      co_await c.stream.async_connect(addr, asio::redirect_error(use_awaitable, ec));
      if (ec) {
        c.close();
        out.net_error = "connect: " + ec.message();
        co_return;
      }
      c.stream.socket().set_option(tcp::no_delay(true), ec);
      c.open = true;
    }
    uint64_t len = r.body_str ? r.body_str->size() : r.body_len;
    bool has_body = r.body_str || std::strcmp(r.method, "PUT") == 0 || std::strcmp(r.method, "POST") == 0;
    std::string head = head_of(ep, r, len, has_body);
    co_await write_request(c, ds, head, r, ec);
    if (!ec) co_await read_response(c, ds, r, out, ec);
    if (!ec) co_return;
    c.close();
    bool stale = reused && out.status == 0 &&
                 (ec == bhttp::error::end_of_stream || ec == asio::error::connection_reset ||
                  ec == asio::error::broken_pipe || ec == asio::error::eof);
    if (stale && attempt == 0) continue;
    if (out.status == 0) out.net_error = "net: " + ec.message();
    co_return;
  }
}

std::string s3_code_of(const std::string& body) {
  size_t a = body.find("<Code>");
  if (a == std::string::npos) return "";
  a += 6;
  size_t b = body.find("</Code>", a);
  return b == std::string::npos ? "" : body.substr(a, b - a);
}

std::string xml_value(const std::string& body, const std::string& tag) {
  std::string open = "<" + tag + ">", close = "</" + tag + ">";
  size_t a = body.find(open);
  if (a == std::string::npos) return "";
  a += open.size();
  size_t b = body.find(close, a);
  return b == std::string::npos ? "" : body.substr(a, b - a);
}

// "503 SlowDown", "404", "net: ...", "verify"; "" when the response succeeded.
std::string error_of(const Resp& r) {
  if (!r.net_error.empty()) return r.net_error;
  if (r.status >= 200 && r.status < 300) return r.mismatch ? "verify" : "";
  std::string code = s3_code_of(r.body);
  return std::to_string(r.status) + (code.empty() ? "" : " " + code);
}

// ---------------------------------------------------------------- a step

struct Step {
  const BenchOptions* opt = nullptr;
  const Endpoint* ep = nullptr;
  const Dataset* ds = nullptr;
  tcp::endpoint addr;
  Op op = Op::put;
  bool prepare = false;  // PUT the dataset's objects instead of measuring op
  Clock::time_point warm_end, end;
  uint64_t max_ops = 0;  // 0: until `end`
  std::atomic<uint64_t> issued{0};
  std::atomic<uint64_t> next_object{0};  // --sequential
  std::atomic<uint64_t> done{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<int> running{0};
};

struct Worker {
  Worker(Step* s, int i, const asio::any_io_executor& ex) : step(s), id(i), conn(ex), rng(mix64(i + 1) ^ std::random_device{}()) {}
  Step* step;  // owned by run(), outlives the worker
  int id;
  Conn conn;
  std::mt19937_64 rng;
  uint64_t seq = 0;
  std::array<OpStats, kOpCount> stats;
  std::deque<std::pair<std::string, uint64_t>> own_keys;  // mixed: keys this worker put (for delete)
  Clock::time_point last_end{};

  OpStats& of(Op o) { return stats[static_cast<int>(o)]; }
  double uniform() { return std::uniform_real_distribution<double>(0, 1)(rng); }
};

std::string object_path(const Endpoint& ep, const std::string& key) { return "/" + ep.bucket + "/" + key; }

uint64_t ns_since(Clock::time_point t0) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
}

// Records r into stats (when rec) and returns whether it succeeded.
bool account(Worker& w, Op as, const Resp& r, Clock::time_point t0, uint64_t bytes, bool rec) {
  std::string err = error_of(r);
  if (!rec) return err.empty();
  OpStats& s = w.of(as);
  if (err.empty()) {
    s.record_ok(ns_since(t0), bytes);
    return true;
  }
  if (err == "verify") ++s.verify_failures;
  s.record_error(err);
  w.step->failed.fetch_add(1, std::memory_order_relaxed);
  return false;
}

awaitable<bool> put_object(Worker& w, const std::string& key, uint64_t size, uint64_t off, bool rec) {
  const Step& st = *w.step;
  Req r;
  r.method = "PUT";
  r.path = object_path(*st.ep, key);
  r.body_off = off;
  r.body_len = size;
  Resp resp;
  auto t0 = Clock::now();
  co_await exchange(w.conn, *st.ep, st.addr, *st.ds, r, resp);
  co_return account(w, Op::put, resp, t0, size, rec);
}

awaitable<bool> get_object(Worker& w, const std::string& key, uint64_t size, uint64_t off, bool rec) {
  const Step& st = *w.step;
  Req r;
  r.method = "GET";
  r.path = object_path(*st.ep, key);
  r.expect = true;
  r.verify = st.opt->verify;
  r.expect_off = off;
  r.expect_len = size;
  Resp resp;
  auto t0 = Clock::now();
  co_await exchange(w.conn, *st.ep, st.addr, *st.ds, r, resp);
  co_return account(w, Op::get, resp, t0, resp.body_bytes, rec);
}

awaitable<bool> head_object(Worker& w, const std::string& key, uint64_t size, bool rec) {
  const Step& st = *w.step;
  Req r;
  r.method = "HEAD";
  r.path = object_path(*st.ep, key);
  Resp resp;
  auto t0 = Clock::now();
  co_await exchange(w.conn, *st.ep, st.addr, *st.ds, r, resp);
  if (resp.status == 200 && resp.content_length != size) resp.mismatch = true;
  co_return account(w, Op::stat, resp, t0, 0, rec);
}

awaitable<bool> delete_object(Worker& w, const std::string& key, bool rec) {
  const Step& st = *w.step;
  Req r;
  r.method = "DELETE";
  r.path = object_path(*st.ep, key);
  Resp resp;
  auto t0 = Clock::now();
  co_await exchange(w.conn, *st.ep, st.addr, *st.ds, r, resp);
  co_return account(w, Op::del, resp, t0, 0, rec);
}

awaitable<bool> list_objects(Worker& w, bool rec) {
  const Step& st = *w.step;
  Req r;
  r.method = "GET";
  r.path = "/" + st.ep->bucket;
  r.query = "list-type=2&max-keys=1000&prefix=" + s3::uri_encode(st.ds->prefix + "obj/", true);
  Resp resp;
  auto t0 = Clock::now();
  co_await exchange(w.conn, *st.ep, st.addr, *st.ds, r, resp);
  co_return account(w, Op::list, resp, t0, resp.body_bytes, rec);
}

// CreateMultipartUpload, the parts, CompleteMultipartUpload: one operation.
awaitable<bool> multipart_upload(Worker& w, const std::string& key, uint64_t size, uint64_t off, bool rec) {
  const Step& st = *w.step;
  auto t0 = Clock::now();
  Req r;
  r.method = "POST";
  r.path = object_path(*st.ep, key);
  r.query = "uploads";
  r.capture_body = true;
  std::string empty;
  r.body_str = &empty;
  Resp resp;
  co_await exchange(w.conn, *st.ep, st.addr, *st.ds, r, resp);
  std::string upload_id = xml_value(resp.body, "UploadId");
  if (error_of(resp).empty() && upload_id.empty()) resp.net_error = "no UploadId";
  if (!error_of(resp).empty()) co_return account(w, Op::multipart, resp, t0, 0, rec);
  std::string id_q = s3::uri_encode(upload_id, true);
  uint64_t part_size = std::max<uint64_t>(st.opt->part_size, 1);
  std::string complete = "<CompleteMultipartUpload>";
  uint64_t sent = 0;
  for (int n = 1; sent < size || n == 1; ++n) {
    Req pr;
    pr.method = "PUT";
    pr.path = r.path;
    pr.query = "partNumber=" + std::to_string(n) + "&uploadId=" + id_q;
    pr.body_off = off + sent;
    pr.body_len = std::min(part_size, size - sent);
    co_await exchange(w.conn, *st.ep, st.addr, *st.ds, pr, resp);
    if (!error_of(resp).empty()) co_return account(w, Op::multipart, resp, t0, 0, rec);
    complete += "<Part><PartNumber>" + std::to_string(n) + "</PartNumber><ETag>" + resp.etag + "</ETag></Part>";
    sent += pr.body_len;
  }
  complete += "</CompleteMultipartUpload>";
  Req cr;
  cr.method = "POST";
  cr.path = r.path;
  cr.query = "uploadId=" + id_q;
  cr.body_str = &complete;
  cr.capture_body = true;
  co_await exchange(w.conn, *st.ep, st.addr, *st.ds, cr, resp);
  // CompleteMultipartUpload can fail with 200 and an <Error> body.
  if (resp.status == 200 && resp.body.find("<Error>") != std::string::npos) resp.status = 500;
  co_return account(w, Op::multipart, resp, t0, size, rec);
}

std::string new_key(Worker& w) {
  return w.step->ds->prefix + "w" + std::to_string(w.id) + "/" + std::to_string(w.seq++);
}

awaitable<void> one_op(Worker& w, Op op, bool rec) {
  const Step& st = *w.step;
  const Dataset& ds = *st.ds;
  switch (op) {
    case Op::put: {
      co_await put_object(w, new_key(w), ds.size.pick(w.rng()), w.rng(), rec);
      break;
    }
    case Op::get: {
      uint64_t i = (st.opt->sequential ? w.step->next_object.fetch_add(1) : w.rng()) % std::max<uint64_t>(ds.objects, 1);
      co_await get_object(w, ds.object_key(i), ds.object_size(i), ds.object_offset(i), rec);
      break;
    }
    case Op::stat: {
      uint64_t i = (st.opt->sequential ? w.step->next_object.fetch_add(1) : w.rng()) % std::max<uint64_t>(ds.objects, 1);
      co_await head_object(w, ds.object_key(i), ds.object_size(i), rec);
      break;
    }
    case Op::raw: {
      auto t0 = Clock::now();
      std::string key = new_key(w);
      uint64_t size = ds.size.pick(w.rng()), off = w.rng();
      bool ok = co_await put_object(w, key, size, off, rec);
      if (ok) ok = co_await get_object(w, key, size, off, rec);
      if (rec) {
        if (ok) w.of(Op::raw).record_ok(ns_since(t0), 2 * size);
        else w.of(Op::raw).record_error("failed (see put/get)");
      }
      break;
    }
    case Op::del: {
      std::string key = new_key(w);
      if (co_await put_object(w, key, ds.size.pick(w.rng()), w.rng(), rec)) co_await delete_object(w, key, rec);
      break;
    }
    case Op::list:
      co_await list_objects(w, rec);
      break;
    case Op::multipart:
      co_await multipart_upload(w, new_key(w), ds.size.pick(w.rng()), w.rng(), rec);
      break;
    case Op::mixed: {
      Op pick = st.opt->mix.pick(w.uniform());
      if (pick == Op::del && w.own_keys.empty()) pick = Op::put;
      auto t0 = Clock::now();
      bool ok = true;
      if (pick == Op::put) {
        std::string key = new_key(w);
        ok = co_await put_object(w, key, ds.size.pick(w.rng()), w.rng(), rec);
        if (ok && w.own_keys.size() < 100000) w.own_keys.emplace_back(key, 0);
      } else if (pick == Op::del) {
        std::string key = w.own_keys.front().first;
        w.own_keys.pop_front();
        ok = co_await delete_object(w, key, rec);
      } else {
        uint64_t i = w.rng() % std::max<uint64_t>(ds.objects, 1);
        if (pick == Op::get) ok = co_await get_object(w, ds.object_key(i), ds.object_size(i), ds.object_offset(i), rec);
        else ok = co_await head_object(w, ds.object_key(i), ds.object_size(i), rec);
      }
      if (rec) {
        if (ok) w.of(Op::mixed).record_ok(ns_since(t0), 0);
        else w.of(Op::mixed).record_error(std::string(op_name(pick)) + " failed");
      }
      break;
    }
  }
}

// Whether to start another operation: 0 stop, 1 warm-up (not recorded), 2 measured.
int next_op(Step& st) {
  auto now = Clock::now();
  if (st.prepare) return st.issued.load(std::memory_order_relaxed) < st.ds->objects ? 2 : 0;
  if (now < st.warm_end) return 1;
  if (st.max_ops) return st.issued.fetch_add(1, std::memory_order_relaxed) < st.max_ops ? 2 : 0;
  return now < st.end ? 2 : 0;
}

awaitable<void> worker_loop(Worker* w) {
  Step& st = *w->step;
  for (;;) {
    if (st.prepare) {
      uint64_t i = st.issued.fetch_add(1, std::memory_order_relaxed);
      if (i >= st.ds->objects) break;
      co_await put_object(*w, st.ds->object_key(i), st.ds->object_size(i), st.ds->object_offset(i), true);
    } else {
      int what = next_op(st);
      if (what == 0) break;
      co_await one_op(*w, st.op, what == 2);
      if (what == 2) w->last_end = Clock::now();
    }
    st.done.fetch_add(1, std::memory_order_relaxed);
  }
  w->conn.close();
  st.running.fetch_sub(1);
}

Result<tcp::endpoint> resolve(const Endpoint& ep) {
  beast::error_code ec;
  auto addr = asio::ip::make_address(ep.host, ec);
  if (!ec) return tcp::endpoint(addr, ep.port);
  asio::io_context ioc;
  tcp::resolver res(ioc);
  auto r = res.resolve(ep.host, std::to_string(ep.port), ec);
  if (ec || r.empty()) return unavailable("cannot resolve " + ep.host + ": " + ec.message());
  return r.begin()->endpoint();
}

// Runs `concurrency` workers of st to completion; prints progress on stderr.
std::vector<std::unique_ptr<Worker>> run_workers(Step& st, int concurrency, int threads, const std::string& what) {
  threads = std::max(1, std::min(threads, concurrency));
  std::vector<std::unique_ptr<asio::io_context>> iocs;
  for (int i = 0; i < threads; ++i) iocs.push_back(std::make_unique<asio::io_context>(1));
  std::vector<std::unique_ptr<Worker>> workers;
  st.running = concurrency;
  for (int i = 0; i < concurrency; ++i) {
    auto& ioc = *iocs[i % threads];
    workers.push_back(std::make_unique<Worker>(&st, i, ioc.get_executor()));
    asio::co_spawn(ioc, worker_loop(workers.back().get()), asio::detached);
  }
  std::vector<std::thread> pool;
  for (auto& ioc : iocs) pool.emplace_back([&ioc] { ioc->run(); });
  bool tty = st.opt->progress && isatty(2);
  auto t0 = Clock::now();
  auto next_print = t0 + std::chrono::seconds(1);
  uint64_t last_done = 0;
  auto last_t = t0;
  while (st.running.load() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto now = Clock::now();
    if (tty && now >= next_print) {
      uint64_t d = st.done.load();
      double secs = std::chrono::duration<double>(now - last_t).count();
      std::fprintf(stderr, "\r\033[K%s  %5.1fs  %llu ops  %.0f ops/s  %llu errors", what.c_str(),
                   std::chrono::duration<double>(now - t0).count(), static_cast<unsigned long long>(d),
                   (d - last_done) / secs, static_cast<unsigned long long>(st.failed.load()));
      last_done = d;
      last_t = now;
      next_print = now + std::chrono::seconds(1);
    }
  }
  for (auto& t : pool) t.join();
  if (tty) std::fprintf(stderr, "\r\033[K");
  return workers;
}

}  // namespace

void Dataset::generate(const SizeDist& sizes, uint64_t seed) {
  size = sizes;
  uint64_t n = std::min<uint64_t>(std::max<uint64_t>(sizes.max, 1 << 20), 64 << 20) + (1 << 20);
  data.resize(n);
  uint64_t x = seed;
  for (uint64_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v = mix64(x++);
    std::memcpy(data.data() + i, &v, 8);
  }
}

bool Dataset::matches(uint64_t offset, uint64_t pos, const char* p, size_t n) const {
  uint64_t at = (offset % data.size() + pos) % data.size();
  while (n > 0) {
    size_t k = static_cast<size_t>(std::min<uint64_t>(n, data.size() - at));
    if (std::memcmp(data.data() + at, p, k) != 0) return false;
    p += k;
    n -= k;
    at = 0;
  }
  return true;
}

Status ensure_bucket(const Endpoint& ep) {
  if (ep.anonymous) return ok_status();
  auto addr = resolve(ep);
  if (!addr.ok()) return addr.status();
  asio::io_context ioc(1);
  Conn conn(ioc.get_executor());
  Dataset none;
  none.data.resize(1);
  Req r;
  r.method = "PUT";
  r.path = "/" + ep.bucket;
  Resp resp;
  asio::co_spawn(ioc, exchange(conn, ep, *addr, none, r, resp), asio::detached);
  ioc.run();
  std::string err = error_of(resp);
  if (err.empty() || resp.status == 409) return ok_status();
  return unavailable("creating bucket " + ep.bucket + " on " + ep.url + ": " + err);
}

Status prepare_objects(const BenchOptions& opt, const Endpoint& ep, const Dataset& ds, int concurrency) {
  auto addr = resolve(ep);
  if (!addr.ok()) return addr.status();
  Step st;
  st.opt = &opt;
  st.ep = &ep;
  st.ds = &ds;
  st.addr = *addr;
  st.prepare = true;
  int threads = opt.threads > 0 ? opt.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  auto workers = run_workers(st, concurrency, threads, "[" + ep.label + "] preparing objects");
  OpStats all;
  for (auto& w : workers) all.merge(w->of(Op::put));
  if (all.errors) {
    std::string first = all.errors_by_code.begin()->first;
    return unavailable("preparing " + std::to_string(ds.objects) + " objects on " + ep.url + ": " +
                       std::to_string(all.errors) + " errors (" + first + ")");
  }
  return ok_status();
}

Result<StepResult> run_step(const BenchOptions& opt, const Endpoint& ep, const Dataset& ds, Op op, int concurrency) {
  auto addr = resolve(ep);
  if (!addr.ok()) return addr.status();
  Step st;
  st.opt = &opt;
  st.ep = &ep;
  st.ds = &ds;
  st.addr = *addr;
  st.op = op;
  auto t0 = Clock::now();
  st.warm_end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt.warmup_s));
  st.end = st.warm_end + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt.duration_s));
  st.max_ops = opt.op_count;
  int threads = opt.threads > 0 ? opt.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::string what = "[" + ep.label + "] " + std::string(op_name(op)) + " c=" + std::to_string(concurrency);
  auto workers = run_workers(st, concurrency, threads, what);

  Clock::time_point last = st.warm_end;
  for (auto& w : workers) last = std::max(last, w->last_end);
  StepResult res;
  res.endpoint = ep.label;
  res.op = std::string(op_name(op));
  res.concurrency = concurrency;
  res.size_min = ds.size.min;
  res.size_max = ds.size.max;
  res.seconds = std::chrono::duration<double>(last - st.warm_end).count();
  for (int i = 0; i < kOpCount; ++i) {
    OpStats all;
    for (auto& w : workers) all.merge(w->stats[i]);
    if (all.ops == 0 && static_cast<Op>(i) != op) continue;
    OpResult r = finish(std::string(op_name(static_cast<Op>(i))), all, res.seconds);
    if (static_cast<Op>(i) == op) res.primary = r;
    res.by_op.push_back(std::move(r));
  }
  return res;
}

}  // namespace reservoir::bench
