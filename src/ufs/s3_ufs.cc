#include "ufs/s3_ufs.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <pugixml.hpp>

#include "common/hash.h"
#include "common/workers.h"
#include "http/client.h"
#include "http/request.h"
#include "s3/sigv4.h"

namespace reservoir::ufs {

namespace {

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.erase(0, 1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

int64_t parse_time(const std::string& s) {
  struct tm tm {};
  for (const char* f : {"%Y-%m-%dT%H:%M:%S", "%a, %d %b %Y %H:%M:%S"}) {
    tm = {};
    if (strptime(s.c_str(), f, &tm)) return static_cast<int64_t>(timegm(&tm)) * 1000;
  }
  return 0;
}

std::string strip_quotes(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

// Maps an S3 error answer to a Status that says what to do next.
Status classify(int status, const std::string& body, const std::string& what) {
  std::string code, message;
  pugi::xml_document doc;
  if (!body.empty() && doc.load_buffer(body.data(), body.size())) {
    auto err = doc.child("Error");
    code = err.child_value("Code");
    message = err.child_value("Message");
  }
  std::string m = fmt::format("{}: HTTP {} {} {}", what, status, code, message);
  if (status == 503 || code == "SlowDown") return Status(Code::unavailable, m, "SlowDown");
  if (status == 501 || code == "NotImplemented") return invalid_argument(m);  // the backend lacks a feature: parked
  // "A conflicting operation is in progress, try again"; a multipart upload
  // gone from under a part or a completion: the whole upload is tried again.
  if (code == "OperationAborted" || code == "NoSuchUpload") return unavailable(m);
  if (status >= 500 || code == "RequestTimeout" || code == "InternalError" ||
      code == "ServiceUnavailable" || status == 429 || code == "RequestTimeTooSkewed")
    return unavailable(m);
  if (status == 404 && code == "NoSuchBucket") return failed_precondition(m);
  if (status == 404) return not_found(m);
  if (status == 403 || status == 401 || code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" ||
      code == "AccessDenied")
    return permission_denied(m);
  return invalid_argument(m);
}

// S3 takes header values in US-ASCII only (raw UTF-8 fails the signature
// check: 403, which would park the object): others travel encoded as RFC
// 2047 words, as S3 itself returns non-ASCII metadata, and are decoded back.
std::string mail_safe(const std::string& v) {
  if (std::all_of(v.begin(), v.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; })) return v;
  return "=?UTF-8?B?" + base64_encode(v) + "?=";
}

std::string from_mail_safe(const std::string& v) {
  constexpr std::string_view head = "=?UTF-8?B?", tail = "?=";
  if (v.size() < head.size() + tail.size() || v.compare(v.size() - tail.size(), tail.size(), tail) != 0 ||
      !std::equal(head.begin(), head.end(), v.begin(),
                  [](char a, char b) { return a == std::toupper(static_cast<unsigned char>(b)); }))
    return v;
  auto raw = base64_decode(std::string_view(v).substr(head.size(), v.size() - head.size() - tail.size()));
  // (Nothing that no header can hold: a line break would split a response.)
  if (!raw || std::any_of(raw->begin(), raw->end(), [](char ch) {
        auto c = static_cast<unsigned char>(ch);
        return (c < 0x20 && c != '\t') || c == 0x7f;
      }))
    return v;
  return *raw;
}

constexpr int kPartAttempts = 6;

// A request body read from a string; `off` (owned by the caller) is the cursor.
http::BodySource string_body(const std::string& s, size_t& off) {
  return [&s, &off](char* b, size_t n) -> Result<size_t> {
    size_t k = std::min(n, s.size() - off);
    std::memcpy(b, s.data() + off, k);
    off += k;
    return k;
  };
}

std::chrono::milliseconds part_backoff(int attempt) {
  static thread_local std::mt19937 rng(std::random_device{}());
  int64_t base = std::min<int64_t>(8000, 250LL << attempt);
  return std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(base / 2, base)(rng));
}

class S3Ufs : public UnderStore {
 public:
  S3Ufs(S3Options o, http::ClientOptions co) : o_(std::move(o)), client_(co) {}

  std::string uri() const override { return "s3://" + o_.bucket + "/" + o_.prefix; }

  Status check_path(const std::string& path) const override {
    if (path.empty()) return invalid_argument("empty key");
    if ((o_.prefix + path).size() > 1024) return invalid_argument("the key is longer than 1024 bytes with the mount's prefix");
    return ok_status();
  }

  Result<ObjectInfo> head(const std::string& path) override {
    std::string body;
    auto r = send("HEAD", object_target(path), {}, {}, &body);
    if (!r.ok()) return r.status();
    if (r->status != 200) return classify(r->status, body, "HEAD " + path);
    return info_from(path, *r);
  }

  Result<std::unique_ptr<Source>> get(const std::string& path, uint64_t offset, uint64_t length) override {
    http::ClientHeaders h;
    if (offset > 0 || length != UINT64_MAX)
      h.emplace_back("Range", length == UINT64_MAX ? fmt::format("bytes={}-", offset)
                                                   : fmt::format("bytes={}-{}", offset, offset + length - 1));
    auto req = signed_headers("GET", object_target(path), h);
    auto r = client_.open("GET", object_target(path), req);
    if (!r.ok()) return r.status();
    int st = (*r)->response().status;
    if (st == 416) return std::unique_ptr<Source>(std::make_unique<StringSource>(""));
    if (st != 200 && st != 206) {
      std::string body = drain(**r);
      return classify(st, body, "GET " + path);
    }
    return std::unique_ptr<Source>(std::make_unique<StreamSource>(std::move(r.value())));
  }

  // One ranged GET: the metadata comes with the bytes (the total size from
  // Content-Range), saving the HEAD round trip of a cold read.
  Result<OpenedObject> open_read(const std::string& path, uint64_t offset, uint64_t length) override {
    http::ClientHeaders h;
    h.emplace_back("Range", length == UINT64_MAX ? fmt::format("bytes={}-", offset)
                                                 : fmt::format("bytes={}-{}", offset, offset + length - 1));
    auto req = signed_headers("GET", object_target(path), h);
    auto r = client_.open("GET", object_target(path), req);
    if (!r.ok()) return r.status();
    int st = (*r)->response().status;
    if (st == 416) {
      drain(**r);
      return UnderStore::open_read(path, offset, length);  // past the end (or empty): HEAD says what it is
    }
    if (st != 200 && st != 206) {
      std::string body = drain(**r);
      return classify(st, body, "GET " + path);
    }
    OpenedObject o;
    o.info = info_from(path, (*r)->response());
    if (st == 206) {
      auto cr = (*r)->response().header("content-range");  // bytes first-last/total
      auto slash = cr ? cr->rfind('/') : std::string::npos;
      if (slash == std::string::npos || cr->compare(slash + 1, std::string::npos, "*") == 0)
        return unavailable("GET " + path + ": a 206 answer without the object's size");
      o.info.size = std::strtoull(cr->c_str() + slash + 1, nullptr, 10);
    } else if (offset > 0) {
      // (Not drained: that would read the whole object. The dropped stream
      // closes its connection.)
      return unavailable("GET " + path + ": the store ignored the Range header");
    }
    o.src = std::make_unique<StreamSource>(std::move(r.value()));
    return o;
  }

  Status put(const std::string& path, Source& src, uint64_t size, const ObjectInfo& meta) override {
    if (size >= o_.multipart_threshold && size > o_.part_size) return put_multipart(path, src, size, meta);
    http::ClientHeaders h = meta_headers(meta);
    std::string body;
    auto r = send("PUT", object_target(path), h, [&](char* b, size_t n) { return src.read(b, n); }, &body, size);
    if (!r.ok()) return r.status();
    if (r->status != 200) return classify(r->status, body, "PUT " + path);
    // End-to-end check: S3's ETag of a single PUT is the MD5 of the bytes
    // (not with SSE-KMS or SSE-C encryption, whose ETags are not).
    auto et = r->header("etag");
    auto sse = r->header("x-amz-server-side-encryption");
    bool md5_etag = !(sse && sse->rfind("aws:kms", 0) == 0) && !r->header("x-amz-server-side-encryption-customer-algorithm");
    if (et && md5_etag && meta.etag.size() == 32 && strip_quotes(*et) != meta.etag)
      return unavailable(fmt::format("PUT {}: the backend's ETag {} does not match {}", path, *et, meta.etag));
    return ok_status();
  }

  Status remove(const std::string& path) override {
    std::string body;
    auto r = send("DELETE", object_target(path), {}, {}, &body);
    if (!r.ok()) return r.status();
    if (r->status == 204 || r->status == 200 || r->status == 404) {
      if (r->status == 404 && body.find("NoSuchBucket") != std::string::npos) return classify(404, body, "DELETE " + path);
      return ok_status();
    }
    return classify(r->status, body, "DELETE " + path);
  }

  Result<ListPage> list(const std::string& prefix, const std::string& start_after, size_t max) override {
    std::string q = fmt::format("list-type=2&max-keys={}&prefix={}", std::min<size_t>(max, 1000),
                                s3::uri_encode(o_.prefix + prefix, true));
    if (!start_after.empty()) q += "&start-after=" + s3::uri_encode(o_.prefix + start_after, true);
    std::string body;
    auto r = send("GET", bucket_target() + "?" + q, {}, {}, &body);
    if (!r.ok()) return r.status();
    if (r->status != 200) return classify(r->status, body, "LIST " + prefix);
    pugi::xml_document doc;
    if (!doc.load_buffer(body.data(), body.size())) return unavailable("LIST: unparsable answer");
    auto root = doc.child("ListBucketResult");
    ListPage page;
    for (auto c : root.children("Contents")) {
      std::string key = c.child_value("Key");
      if (key.compare(0, o_.prefix.size(), o_.prefix) != 0) continue;
      ObjectInfo i;
      i.path = key.substr(o_.prefix.size());
      i.size = std::strtoull(c.child_value("Size"), nullptr, 10);
      i.etag = strip_quotes(c.child_value("ETag"));
      i.mtime_ms = parse_time(c.child_value("LastModified"));
      page.entries.push_back(std::move(i));
    }
    page.truncated = std::string(root.child_value("IsTruncated")) == "true";
    if (page.entries.size() > max) {
      page.entries.resize(max);
      page.truncated = true;
    }
    return page;
  }

  Status make_dir(const std::string&) override { return ok_status(); }

  Status remove_dir(const std::string& path) override {
    auto l = list(path + "/", "", 1);
    if (!l.ok()) return l.status();
    if (!l->entries.empty()) return failed_precondition(path + " is not empty in the under store");
    return ok_status();
  }

  Result<bool> dir_exists(const std::string& path) override {
    auto l = list(path + "/", "", 1);
    if (!l.ok()) return l.status();
    return !l->entries.empty();
  }

  Result<std::vector<std::string>> list_dirs() override {
    std::vector<std::string> out;
    std::string token;
    for (;;) {  // every page: a listing stops at 1,000 entries
      std::string q = (token.empty() ? "" : "continuation-token=" + s3::uri_encode(token, true) + "&") +
                      "delimiter=%2F&list-type=2&prefix=" + s3::uri_encode(o_.prefix, true);
      std::string body;
      auto r = send("GET", bucket_target() + "?" + q, {}, {}, &body);
      if (!r.ok()) return r.status();
      if (r->status != 200) return classify(r->status, body, "LIST dirs");
      pugi::xml_document doc;
      if (!doc.load_buffer(body.data(), body.size())) return unavailable("LIST dirs: an answer that is not XML");
      auto result = doc.child("ListBucketResult");
      for (auto c : result.children("CommonPrefixes")) {
        std::string p = c.child_value("Prefix");
        if (p.compare(0, o_.prefix.size(), o_.prefix) != 0) continue;  // not ours: ignored
        p = p.substr(o_.prefix.size());
        if (!p.empty() && p.back() == '/') p.pop_back();
        out.push_back(p);
      }
      token = result.child_value("NextContinuationToken");
      if (std::string(result.child_value("IsTruncated")) != "true" || token.empty()) return out;
    }
  }

 private:
  class StreamSource : public Source {
   public:
    explicit StreamSource(std::unique_ptr<http::ResponseStream> r) : r_(std::move(r)) {}
    Result<size_t> read(char* buf, size_t n) override { return r_->read(buf, n); }

   private:
    std::unique_ptr<http::ResponseStream> r_;
  };

  static std::string drain(http::ResponseStream& r) {
    std::string out;
    char buf[8192];
    for (;;) {
      auto n = r.read(buf, sizeof buf);
      if (!n.ok() || *n == 0) break;
      if (out.size() < (1 << 20)) out.append(buf, *n);
    }
    return out;
  }

  std::string bucket_target() const { return o_.path_style ? "/" + o_.bucket : "/"; }
  std::string object_target(const std::string& path) const {
    std::string key = s3::uri_encode(o_.prefix + path, false);
    return o_.path_style ? "/" + o_.bucket + "/" + key : "/" + key;
  }
  // The client connects to bucket.host for virtual-hosted style already.
  std::string host() const { return client_.host_header(); }

  http::ClientHeaders signed_headers(const std::string& method, const std::string& target, http::ClientHeaders h) {
    http::Request req;
    req.method = method;
    req.target = target;
    auto q = target.find('?');
    req.raw_path = target.substr(0, q);
    req.raw_query = q == std::string::npos ? "" : target.substr(q + 1);
    req.headers.emplace_back("host", host());
    for (auto& [k, v] : h) req.headers.emplace_back(k, v);
    if (!o_.session_token.empty()) req.headers.emplace_back("x-amz-security-token", o_.session_token);
    s3::sign_request(req, o_.access_key, o_.secret_key, o_.region, "UNSIGNED-PAYLOAD", std::chrono::system_clock::now());
    return req.headers;
  }

  Result<http::ClientResponse> send(const std::string& method, const std::string& target, const http::ClientHeaders& h,
                                    const http::BodySource& body, std::string* out, uint64_t length = 0) {
    return client_.fetch(method, target, signed_headers(method, target, h), out, body, length);
  }

  static http::ClientHeaders meta_headers(const ObjectInfo& meta) {
    http::ClientHeaders h;
    if (!meta.content_type.empty()) h.emplace_back("content-type", meta.content_type);
    for (auto& [k, v] : meta.headers)
      if (k != "x-amz-website-redirect-location") h.emplace_back(k, mail_safe(v));
    for (auto& [k, v] : meta.user_meta) h.emplace_back("x-amz-meta-" + k, mail_safe(v));
    if (!meta.tags.empty()) {
      std::string t;
      for (auto& [k, v] : meta.tags) t += (t.empty() ? "" : "&") + s3::uri_encode(k, true) + "=" + s3::uri_encode(v, true);
      h.emplace_back("x-amz-tagging", t);
    }
    return h;
  }

  ObjectInfo info_from(const std::string& path, const http::ClientResponse& r) {
    ObjectInfo i;
    i.path = path;
    for (auto& [k, v] : r.headers) {
      if (k == "content-length") i.size = std::strtoull(v.c_str(), nullptr, 10);
      else if (k == "etag") i.etag = strip_quotes(v);
      else if (k == "last-modified") i.mtime_ms = parse_time(v);
      else if (k == "content-type") i.content_type = v;
      else if (k == "cache-control" || k == "content-disposition" || k == "content-encoding" ||
               k == "content-language" || k == "expires")
        i.headers[k] = from_mail_safe(v);
      else if (k.rfind("x-amz-meta-", 0) == 0) i.user_meta[k.substr(11)] = from_mail_safe(v);
    }
    return i;
  }

  Status put_multipart(const std::string& path, Source& src, uint64_t size, const ObjectInfo& meta) {
    std::string target = object_target(path);
    std::string body;
    auto r = send("POST", target + "?uploads", meta_headers(meta), {}, &body);
    if (!r.ok()) return r.status();
    if (r->status != 200) return classify(r->status, body, "CreateMultipartUpload " + path);
    pugi::xml_document doc;
    doc.load_buffer(body.data(), body.size());
    std::string upload_id = doc.child("InitiateMultipartUploadResult").child_value("UploadId");
    if (upload_id.empty()) return unavailable("CreateMultipartUpload: no UploadId in the answer");
    std::string uid_q = "uploadId=" + s3::uri_encode(upload_id, true);
    // S3 takes at most 10,000 parts: larger objects get larger parts.
    const uint64_t part_size = std::max<uint64_t>(o_.part_size, (size + 9999) / 10000);
    size_t parts = static_cast<size_t>((size + part_size - 1) / part_size);
    std::vector<std::string> etags(parts);
    std::mutex src_mu;
    size_t next = 0;
    Status failed;
    std::mutex fail_mu;
    // Workers take the next part, read it from the (sequential) source under
    // a lock, and upload it; memory is part_size per worker.
    auto worker = [&] {
      std::string buf;
      for (;;) {
        size_t idx;
        {
          std::lock_guard lk(src_mu);
          {
            std::lock_guard fl(fail_mu);
            if (!failed.ok() || next == parts) return;
          }
          idx = next++;
          uint64_t len = std::min<uint64_t>(part_size, size - idx * part_size);
          buf.resize(static_cast<size_t>(len));
          size_t got = 0;
          while (got < len) {
            auto n = src.read(buf.data() + got, static_cast<size_t>(len - got));
            if (!n.ok() || *n == 0) {
              std::lock_guard fl(fail_mu);
              failed = n.ok() ? internal_error("source ended early") : n.status();
              return;
            }
            got += *n;
          }
        }
        // A throttled or failed part is retried on its own (the part is in
        // memory) before the whole upload is given up.
        Status st;
        for (int attempt = 0; attempt < kPartAttempts; ++attempt) {
          if (attempt > 0) std::this_thread::sleep_for(part_backoff(attempt));
          size_t off = 0;
          std::string resp_body;
          auto pr = send("PUT", fmt::format("{}?partNumber={}&{}", target, idx + 1, uid_q), {},
                         string_body(buf, off), &resp_body, buf.size());
          st = !pr.ok() ? pr.status() : pr->status != 200 ? classify(pr->status, resp_body, "UploadPart") : ok_status();
          if (st.ok() && pr->header("etag")) etags[idx] = *pr->header("etag");
          else if (st.ok()) st = unavailable("UploadPart: no ETag in the answer");
          if (st.ok() || !st.retryable()) break;
        }
        if (!st.ok()) {
          std::lock_guard fl(fail_mu);
          if (failed.ok()) failed = st;
          return;
        }
      }
    };
    // An exception (bad_alloc of a part buffer) fails the upload, not the process.
    auto guarded_worker = [&] {
      try {
        worker();
      } catch (const std::exception& e) {
        std::lock_guard fl(fail_mu);
        if (failed.ok()) failed = internal_error(std::string("multipart upload: ") + e.what());
      }
    };
    std::vector<std::thread> threads;
    int n = std::max(1, std::min<int>(o_.part_concurrency, static_cast<int>(parts)));
    start_workers(threads, n - 1, guarded_worker, "s3 under store: multipart upload");
    guarded_worker();
    for (auto& t : threads) t.join();
    if (failed.ok()) {
      std::string xml = "<CompleteMultipartUpload>";
      for (size_t i = 0; i < parts; ++i)
        xml += fmt::format("<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>", i + 1, etags[i]);
      xml += "</CompleteMultipartUpload>";
      size_t off = 0;
      auto cr = send("POST", target + "?" + uid_q, {{"content-type", "application/xml"}}, string_body(xml, off), &body,
                     xml.size());
      // CompleteMultipartUpload can fail inside a 200 answer.
      if (!cr.ok()) failed = cr.status();
      else if (cr->status != 200 || body.find("<Error>") != std::string::npos)
        failed = classify(cr->status == 200 ? 500 : cr->status, body, "CompleteMultipartUpload " + path);
      else return ok_status();
    }
    std::string ignored;
    (void)send("DELETE", target + "?" + uid_q, {}, {}, &ignored);
    return failed;
  }

  S3Options o_;
  http::HttpClient client_;
};

}  // namespace

Status parse_s3_uri(const std::string& uri, S3Options& out) {
  if (uri.rfind("s3://", 0) != 0) return invalid_argument("not an s3:// URI: " + uri);
  std::string rest = uri.substr(5);
  auto slash = rest.find('/');
  out.bucket = rest.substr(0, slash);
  out.prefix = slash == std::string::npos ? "" : rest.substr(slash + 1);
  if (!out.prefix.empty() && out.prefix.back() != '/') out.prefix += '/';
  if (out.bucket.empty()) return invalid_argument("s3:// URI without a bucket: " + uri);
  return ok_status();
}

Status resolve_credentials(S3Options& o) {
  auto env = [](const char* n) -> std::string {
    const char* v = std::getenv(n);
    return v ? v : "";
  };
  if (o.ca_file.empty()) o.ca_file = env("AWS_CA_BUNDLE");
  if (!o.access_key.empty() && !o.secret_key.empty()) return ok_status();
  if (!env("AWS_ACCESS_KEY_ID").empty() && !env("AWS_SECRET_ACCESS_KEY").empty()) {
    o.access_key = env("AWS_ACCESS_KEY_ID");
    o.secret_key = env("AWS_SECRET_ACCESS_KEY");
    o.session_token = env("AWS_SESSION_TOKEN");
    return ok_status();
  }
  std::string file = env("AWS_SHARED_CREDENTIALS_FILE");
  if (file.empty() && !env("HOME").empty()) file = env("HOME") + "/.aws/credentials";
  std::string profile = env("AWS_PROFILE").empty() ? "default" : env("AWS_PROFILE");
  std::ifstream f(file);
  std::string line, section;
  while (f && std::getline(f, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = trim(line.substr(1, line.size() - 2));
      continue;
    }
    if (section != profile) continue;
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string k = trim(line.substr(0, eq)), v = trim(line.substr(eq + 1));
    if (k == "aws_access_key_id") o.access_key = v;
    else if (k == "aws_secret_access_key") o.secret_key = v;
    else if (k == "aws_session_token") o.session_token = v;
  }
  if (o.access_key.empty() || o.secret_key.empty())
    return invalid_argument("no credentials for s3://" + o.bucket +
                            ": set access_key/secret_key on the mount, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or ~/.aws/credentials");
  return ok_status();
}

Result<std::unique_ptr<UnderStore>> make_s3_ufs(S3Options o) {
  std::string endpoint = o.endpoint.empty() ? fmt::format("https://s3.{}.amazonaws.com", o.region) : o.endpoint;
  auto co = http::parse_endpoint(endpoint);
  if (!co.ok()) return co.status();
  co->ca_file = o.ca_file;
  if (!o.path_style) co->host = o.bucket + "." + co->host;
  auto u = std::make_unique<S3Ufs>(std::move(o), co.value());
  return std::unique_ptr<UnderStore>(std::move(u));
}

}  // namespace reservoir::ufs
