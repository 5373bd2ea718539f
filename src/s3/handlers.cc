#include "s3/handlers.h"

#include <algorithm>
#include <exception>
#include <random>

#include <fmt/format.h>

#include "common/hash.h"
#include "common/log.h"
#include "s3/chunked.h"
#include "s3/handlers_internal.h"
#include "s3/names.h"

namespace reservoir::s3 {

S3Service::S3Service(Engine& engine, const Config& config, boost::asio::thread_pool& pool)
    : engine_(engine), config_(config), pool_(pool) {}

namespace {

std::string new_request_id() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  return fmt::format("{:016X}", rng());
}

std::string host_without_port(std::string h) {
  if (!h.empty() && h.front() == '[') return h.substr(0, h.find(']') + 1);
  auto c = h.rfind(':');
  if (c != std::string::npos) h = h.substr(0, c);
  for (auto& ch : h) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return h;
}

// Splits the decoded path into bucket and key, honouring virtual-hosted style.
Status route(Ctx& c, const std::vector<std::string>& domains) {
  auto path = uri_decode(c.req.raw_path);
  if (!path) return s3_error("InvalidURI", "Couldn't parse the specified URI.");
  std::string p = *path;
  if (p.empty() || p[0] != '/') return s3_error("InvalidURI", "Couldn't parse the specified URI.");
  std::string host = host_without_port(c.req.header_or("host"));
  // Virtual-hosted style: the longest configured domain the host ends with
  // (so "b.s3.localhost" is bucket "b" whatever the order of the list).
  const std::string* best = nullptr;
  for (auto& d : domains) {
    if (host.size() > d.size() + 1 && host.compare(host.size() - d.size(), d.size(), d) == 0 &&
        host[host.size() - d.size() - 1] == '.' && (!best || d.size() > best->size()))
      best = &d;
  }
  if (best) {
    c.bucket = host.substr(0, host.size() - best->size() - 1);
    c.key = p.substr(1);
    return ok_status();
  }
  auto slash = p.find('/', 1);
  if (slash == std::string::npos) {
    c.bucket = p.substr(1);
  } else {
    c.bucket = p.substr(1, slash - 1);
    c.key = p.substr(slash + 1);
  }
  return ok_status();
}

Status parse_query(Ctx& c) {
  const std::string& q = c.req.raw_query;
  size_t pos = 0;
  while (pos < q.size()) {
    size_t amp = q.find('&', pos);
    if (amp == std::string::npos) amp = q.size();
    std::string kv = q.substr(pos, amp - pos);
    pos = amp + 1;
    if (kv.empty()) continue;
    size_t eq = kv.find('=');
    auto k = uri_decode(kv.substr(0, eq));
    auto v = eq == std::string::npos ? std::optional<std::string>("") : uri_decode(kv.substr(eq + 1));
    if (!k || !v) return s3_error("InvalidArgument", "Malformed query string");
    c.query[*k] = *v;
  }
  return ok_status();
}

}  // namespace

awaitable<void> S3Service::handle(const http::Request& req, http::BodyReader& body, http::ResponseWriter& resp) {
  Ctx c{req, body, resp, *this, {}, {}, {}, {}, new_request_id()};
  Status st = route(c, config_.server.domains);
  if (st.ok()) st = parse_query(c);
  if (st.ok()) {
    auto auth = verify_sigv4(
        req,
        [this](std::string_view ak) -> std::optional<std::string> {
          if (ak == config_.auth.access_key) return config_.auth.secret_key;
          return std::nullopt;
        },
        std::chrono::system_clock::now());
    if (!auth.ok()) st = auth.status();
    else if (auth->anonymous && !config_.auth.allow_anonymous) st = s3_error("AccessDenied", "Anonymous access is not allowed");
    else c.auth = auth.value();
  }
  if (!st.ok()) {
    LOG_DEBUG("{} {} -> {}", req.method, req.target, st.to_string());
    co_await send_error(c, st);
    co_return;
  }
  if (c.bucket.empty()) {
    co_await handle_bucket(c);  // the service root: ListBuckets
  } else if (c.key.empty()) {
    co_await handle_bucket(c);
  } else {
    co_await handle_object(c);
  }
}

awaitable<void> send_error(Ctx& c, const Status& st) {
  S3Error e = to_s3_error(st);
  if (e.http_status >= 500) LOG_WARN("{} {} -> {} {}", c.req.method, c.req.target, e.code, e.message);
  if (c.resp.head_sent()) {
    c.resp.close_after();
    co_return;
  }
  if (!c.body.complete()) c.resp.close_after();
  Headers h;
  h.emplace_back("x-amz-request-id", c.request_id);
  if (e.code == "SlowDown" || e.code == "ServiceUnavailable") h.emplace_back("Retry-After", "1");
  if (c.req.method == "HEAD" || e.http_status == 304) {
    (void)co_await c.resp.send_head(e.http_status, h, 0);
    co_return;
  }
  std::string xml = error_xml(e, c.resource(), c.request_id);
  h.emplace_back("Content-Type", "application/xml");
  if (!(co_await c.resp.send_head(e.http_status, h, xml.size())).ok()) co_return;
  (void)co_await c.resp.send_body(xml.data(), xml.size());
}

awaitable<void> send_xml(Ctx& c, int status, const std::string& xml, const Headers& extra) {
  Headers h = extra;
  h.emplace_back("x-amz-request-id", c.request_id);
  h.emplace_back("Content-Type", "application/xml");
  if (!(co_await c.resp.send_head(status, h, xml.size())).ok()) co_return;
  (void)co_await c.resp.send_body(xml.data(), xml.size());
}

awaitable<void> send_xml(Ctx& c, int status, const std::string& xml) {
  Headers none;
  co_await send_xml(c, status, xml, none);
}

awaitable<void> send_empty(Ctx& c, int status, const Headers& extra) {
  Headers h = extra;
  h.emplace_back("x-amz-request-id", c.request_id);
  (void)co_await c.resp.send_head(status, h, 0);
}

awaitable<void> send_empty(Ctx& c, int status) {
  Headers none;
  co_await send_empty(c, status, none);
}

std::string quote_etag(const std::string& etag) { return "\"" + etag + "\""; }

std::string strip_quotes(std::string s) {
  while (!s.empty() && (s.front() == ' ')) s.erase(0, 1);
  while (!s.empty() && (s.back() == ' ')) s.pop_back();
  if (s.rfind("W/", 0) == 0) s = s.substr(2);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

// --- request bodies ---

namespace {

// Decodes the body as announced by x-amz-content-sha256 / Content-Encoding and
// verifies what the client declared about it.
class BodyDecoder {
 public:
  explicit BodyDecoder(Ctx& c) : c_(c) {}

  Status init() {
    const std::string& ph = c_.auth.payload_hash;
    std::string enc = c_.req.header_or("content-encoding");
    bool chunked = ph.rfind("STREAMING-", 0) == 0;
    if (chunked) {
      AwsChunkedDecoder::Mode mode;
      if (ph == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD") mode = AwsChunkedDecoder::Mode::signed_chunks;
      else if (ph == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER") mode = AwsChunkedDecoder::Mode::signed_chunks_trailer;
      else if (ph == "STREAMING-UNSIGNED-PAYLOAD-TRAILER") mode = AwsChunkedDecoder::Mode::unsigned_trailer;
      else return s3_error("InvalidArgument", "Unsupported x-amz-content-sha256 value " + ph);
      decoder_ = std::make_unique<AwsChunkedDecoder>(mode, c_.auth);
      // Required with every aws-chunked body (as S3 requires it), in digits.
      auto dl = c_.req.header("x-amz-decoded-content-length");
      if (!dl) return s3_error("MissingContentLength", "x-amz-decoded-content-length is required with an aws-chunked body");
      if (dl->empty() || dl->size() > 19 || dl->find_first_not_of("0123456789") != std::string::npos)
        return s3_error("InvalidArgument", "Bad x-amz-decoded-content-length");
      expected_ = std::stoull(*dl);
    } else {
      if (ph.size() == 64) sha256_ = make_hasher(HashAlgo::sha256);
      auto cl = c_.body.content_length();
      if (cl) expected_ = *cl;
      else if (c_.req.header("transfer-encoding") == nullptr && c_.req.method == "PUT")
        return s3_error("MissingContentLength");
    }
    if (auto md5 = c_.req.header("content-md5")) {
      auto raw = base64_decode(*md5);
      if (!raw || raw->size() != 16) return s3_error("InvalidDigest");
      md5_expected_ = *raw;
      md5_ = make_hasher(HashAlgo::md5);
    }
    // At most one, and a digest of its algorithm's size (as S3 checks them,
    // before the body).
    for (auto [algo, bytes] : {std::pair<const char*, size_t>{"crc32", 4}, {"crc32c", 4}, {"sha1", 20},
                               {"sha256", 32}, {"crc64nvme", 8}}) {
      std::string h = std::string("x-amz-checksum-") + algo;
      auto v = c_.req.header(h);
      if (!v) continue;
      if (!checks_.empty())
        return s3_error("InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.");
      auto raw = base64_decode(*v);
      if (!raw || raw->size() != bytes) return s3_error("InvalidRequest", "Value for " + h + " header is invalid.");
      add_checksum(algo, *v);
    }
    if (auto t = c_.req.header("x-amz-trailer")) {
      std::string name = *t;
      for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (name.rfind("x-amz-checksum-", 0) == 0) add_checksum(name.substr(15), "");
    }
    return ok_status();
  }

  // Reads decoded bytes; 0 at the end.
  awaitable<Result<size_t>> read(char* out, size_t n) {
    while (pending_.empty()) {
      if (eof_) co_return size_t{0};
      if (!raw_) {
        auto cl = c_.body.content_length();
        raw_size_ = static_cast<size_t>(std::min<uint64_t>(256 * 1024, cl ? std::max<uint64_t>(*cl, 1) : 256 * 1024));
        raw_.reset(new char[raw_size_]);
      }
      auto r = co_await c_.body.read_some(raw_.get(), raw_size_);
      if (!r.ok()) co_return r.status();
      if (*r == 0) {
        eof_ = true;
        break;
      }
      if (decoder_) {
        Status st = decoder_->feed(std::string_view(raw_.get(), *r), &pending_);
        if (!st.ok()) co_return st;
      } else {
        pending_.assign(raw_.get(), *r);
      }
    }
    size_t k = std::min(n, pending_.size());
    std::memcpy(out, pending_.data(), k);
    pending_.erase(0, k);
    update(out, k);
    co_return k;
  }

  // Verifies lengths and checksums once read() returned 0.
  Status finish(std::map<std::string, std::string>& checksums) {
    if (decoder_) {
      RETURN_IF_ERROR(decoder_->finish());
      for (auto& [k, v] : decoder_->trailers())
        if (k.rfind("x-amz-checksum-", 0) == 0) {
          std::string algo = k.substr(15);
          bool known = false;
          for (auto& ck : checks_)
            if (ck.algo == algo) {
              ck.expected = v;
              known = true;
            }
          if (!known) add_checksum(algo, v);
        }
    }
    if (expected_ && total_ != *expected_) return s3_error("IncompleteBody");
    if (sha256_ && hex_encode(sha256_->digest()) != c_.auth.payload_hash) return s3_error("XAmzContentSHA256Mismatch");
    if (md5_ && md5_->digest() != md5_expected_) return s3_error("BadDigest");
    for (auto& ck : checks_) {
      if (ck.expected.empty()) return s3_error("InvalidRequest", "The checksum trailer x-amz-checksum-" + ck.algo + " is missing");
      std::string got = base64_encode(ck.hasher->digest());
      if (got != ck.expected)
        return s3_error("BadDigest", fmt::format("The {} you specified did not match the calculated checksum.", ck.algo));
      checksums[ck.algo] = got;
    }
    return ok_status();
  }

 private:
  struct Check {
    std::string algo;
    std::string expected;
    std::unique_ptr<Hasher> hasher;
  };
  void add_checksum(const std::string& algo, const std::string& expected) {
    auto a = hash_algo_from_name(algo);
    if (!a || *a == HashAlgo::md5) return;
    checks_.push_back({algo, expected, make_hasher(*a)});
  }
  void update(const char* p, size_t n) {
    total_ += n;
    if (sha256_) sha256_->update(p, n);
    if (md5_) md5_->update(p, n);
    for (auto& ck : checks_) ck.hasher->update(p, n);
  }

  Ctx& c_;
  std::unique_ptr<AwsChunkedDecoder> decoder_;
  std::optional<uint64_t> expected_;
  std::unique_ptr<Hasher> sha256_, md5_;
  std::string md5_expected_;
  std::vector<Check> checks_;
  // Sized to the body (at most 256 KiB) and not zero-filled: a 1 MiB
  // zeroed buffer per request showed up as memset and page faults in profiles.
  std::unique_ptr<char[]> raw_;
  size_t raw_size_ = 0;
  std::string pending_;
  uint64_t total_ = 0;
  bool eof_ = false;
};

}  // namespace

awaitable<Result<std::string>> read_small_body(Ctx& c, size_t max_bytes) {
  BodyDecoder d(c);
  Status st = d.init();
  if (!st.ok()) co_return st;
  std::string out;
  std::vector<char> buf(64 * 1024);
  for (;;) {
    auto r = co_await d.read(buf.data(), buf.size());
    if (!r.ok()) co_return r.status();
    if (*r == 0) break;
    out.append(buf.data(), *r);
    if (out.size() > max_bytes) co_return s3_error("MalformedXML", "The request body is too large");
  }
  std::map<std::string, std::string> ignored;
  st = d.finish(ignored);
  if (!st.ok()) co_return st;
  co_return out;
}

namespace {
Status write_error(Status ws) {
  if (ws.code() == Code::resource_exhausted) return s3_error("SlowDown", "The cache is out of space; retry later");
  return ws;
}
}  // namespace

std::optional<uint64_t> body_length(const Ctx& c) {
  if (c.auth.payload_hash.rfind("STREAMING-", 0) != 0) return c.body.content_length();
  const std::string* v = c.req.header("x-amz-decoded-content-length");
  if (!v || v->empty() || v->size() >= 20 || !std::all_of(v->begin(), v->end(), [](unsigned char ch) { return std::isdigit(ch); })) return std::nullopt;
  return std::stoull(*v);
}

awaitable<Status> receive_body(Ctx& c, store::FileWriter* w, std::map<std::string, std::string>& checksums,
                               std::string& tail) {
  BodyDecoder d(c);
  Status st = d.init();
  if (!st.ok()) co_return st;
  constexpr size_t kMaxChunk = 1 << 20;
  tail.clear();
  // Small bodies get a buffer of their own size (+1 to see the end).
  auto cl = body_length(c);
  const size_t kChunk = cl ? static_cast<size_t>(std::min<uint64_t>(kMaxChunk, *cl + 1)) : kMaxChunk;
  // Two buffers: a full one is written (hashed, appended) on the pool while
  // the next one is read from the socket.
  // Both allocated before any write starts: nothing below throws while a
  // write uses one of them (and an exception still waits for the write).
  std::unique_ptr<char[]> storage[2] = {std::unique_ptr<char[]>(new char[kChunk]),
                                        w ? std::unique_ptr<char[]>(new char[kChunk]) : nullptr};
  int cur = 0;
  char* buf = storage[0].get();
  size_t fill = 0;
  http::PendingJob<Status> writing;
  Status failed = ok_status();
  std::exception_ptr thrown;
  try {
    for (;;) {
      auto r = co_await d.read(buf + fill, kChunk - fill);
      if (!r.ok()) {
        failed = r.status();
        break;
      }
      fill += *r;
      if (*r == 0) break;
      if (fill == kChunk) {
        if (!w) {  // the caller asked for the whole body in `tail`
          failed = s3_error("InvalidRequest", "The body is longer than its declared length");
          break;
        }
        if (writing.started()) {
          failed = write_error(co_await writing.wait());
          if (!failed.ok()) break;
        }
        const char* p = buf;
        writing.start(c.svc.pool(), [w, p, n = kChunk] { return w->append(p, n); });
        cur ^= 1;
        buf = storage[cur].get();
        fill = 0;
      }
    }
  } catch (...) {
    thrown = std::current_exception();
  }
  // Never leave with a write still using a buffer or the writer.
  if (writing.started()) {
    Status ws = write_error(co_await writing.wait());
    if (failed.ok()) failed = ws;
  }
  if (thrown) std::rethrow_exception(thrown);
  if (!failed.ok()) co_return failed;
  st = d.finish(checksums);
  if (!st.ok()) co_return st;
  tail.assign(buf, fill);
  co_return ok_status();
}

// --- headers <-> attributes ---

Result<ObjectAttrs> attrs_from_headers(const http::Request& req) {
  ObjectAttrs a;
  for (auto& [k, v] : req.headers) {
    if (k == "content-type") a.content_type = v;
    else if (k == "cache-control" || k == "content-disposition" || k == "content-language" || k == "expires" ||
             k == "x-amz-website-redirect-location")
      a.headers[k] = v;
    else if (k == "content-encoding") {
      // aws-chunked is transport framing, not a property of the object.
      std::string rest;
      size_t pos = 0;
      while (pos <= v.size()) {
        size_t comma = v.find(',', pos);
        if (comma == std::string::npos) comma = v.size();
        std::string tok = v.substr(pos, comma - pos);
        while (!tok.empty() && tok.front() == ' ') tok.erase(0, 1);
        while (!tok.empty() && tok.back() == ' ') tok.pop_back();
        if (!tok.empty() && tok != "aws-chunked") rest += (rest.empty() ? "" : ",") + tok;
        pos = comma + 1;
      }
      if (!rest.empty()) a.headers[k] = rest;
    } else if (k.rfind("x-amz-meta-", 0) == 0) {
      a.user_meta[k.substr(11)] = v;
    }
  }
  if (auto t = req.header("x-amz-tagging")) {
    auto tags = parse_tag_header(*t);
    if (!tags.ok()) return tags.status();
    a.tags = tags.value();
  }
  // Kept as text (a file:// under store's sidecar is JSON): bytes that are
  // not UTF-8 (e.g. Latin-1 sent raw) are refused, not stored mangled.
  bool all_text = valid_utf8(a.content_type);
  for (auto& [k, v] : a.headers) all_text = all_text && valid_utf8(v);
  for (auto& [k, v] : a.user_meta) all_text = all_text && valid_utf8(k) && valid_utf8(v);
  if (!all_text)
    return s3_error("InvalidArgument", "Metadata and content headers must be UTF-8 text (encode other bytes, e.g. as RFC 2047 or URL-encoded)");
  size_t meta_size = 0;
  for (auto& [k, v] : a.user_meta) meta_size += k.size() + v.size();
  if (meta_size > 2048) return s3_error("MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size.");
  return a;
}

Headers object_headers(const store::ObjectMeta& m, bool with_checksums) {
  Headers h;
  h.emplace_back("ETag", quote_etag(m.etag));
  h.emplace_back("Last-Modified", http_date(m.mtime_ms));
  h.emplace_back("Content-Type", m.content_type.empty() ? "binary/octet-stream" : m.content_type);
  h.emplace_back("Accept-Ranges", "bytes");
  for (auto& [k, v] : m.headers) h.emplace_back(k, v);
  for (auto& [k, v] : m.user_meta) h.emplace_back("x-amz-meta-" + k, v);
  if (!m.tags.empty()) h.emplace_back("x-amz-tagging-count", std::to_string(m.tags.size()));
  if (with_checksums)
    for (auto& [algo, v] : m.checksums) h.emplace_back("x-amz-checksum-" + algo, v);
  h.emplace_back("x-reservoir-persist-state", store::persist_state_name(m.state));
  return h;
}

}  // namespace reservoir::s3
