// Object-level S3 operations: Get/Head/Put/Delete/Copy, tagging, attributes,
// ACL reads, and multipart uploads.
#include <algorithm>
#include <fmt/format.h>

#include "common/hash.h"
#include "s3/handlers_internal.h"
#include "s3/range.h"

namespace reservoir::s3 {

namespace {

constexpr const char* kOwnerId = "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a";

bool etag_matches(const std::string& header, const std::string& etag) {
  size_t pos = 0;
  while (pos <= header.size()) {
    size_t comma = header.find(',', pos);
    if (comma == std::string::npos) comma = header.size();
    std::string tok = strip_quotes(header.substr(pos, comma - pos));
    if (tok == "*" || tok == etag) return true;
    pos = comma + 1;
  }
  return false;
}

// S3 copies (CopyObject, UploadPartCopy) at most 5 GiB in one request.
Status check_copy_size(uint64_t bytes) {
  constexpr uint64_t kMaxCopy = 5ull << 30;
  if (bytes <= kMaxCopy) return ok_status();
  return s3_error("InvalidRequest", fmt::format("The specified copy source is larger than the maximum allowable size "
                                                "for a copy source: {}",
                                                kMaxCopy));
}

// GET/HEAD preconditions (RFC 7232 order, as S3 applies them).
Status check_read_conditions(const http::Request& req, const store::ObjectMeta& m, const char* prefix = "") {
  auto hdr = [&](const char* n) { return req.header(std::string(prefix) + n); };
  int64_t mtime_s = m.mtime_ms / 1000;
  auto im = hdr("if-match");
  auto inm = hdr("if-none-match");
  auto ims = hdr("if-modified-since");
  auto ius = hdr("if-unmodified-since");
  bool copy = prefix[0] != 0;
  if (im) {
    if (!etag_matches(*im, m.etag)) return s3_error("PreconditionFailed");
  } else if (ius) {
    int64_t t = parse_http_date(*ius);
    if (t >= 0 && mtime_s > t / 1000) return s3_error("PreconditionFailed");
  }
  if (inm) {
    if (etag_matches(*inm, m.etag)) return copy ? s3_error("PreconditionFailed") : s3_error("NotModified");
  } else if (ims) {
    int64_t t = parse_http_date(*ims);
    if (t >= 0 && mtime_s <= t / 1000) return copy ? s3_error("PreconditionFailed") : s3_error("NotModified");
  }
  return ok_status();
}

// The body size the client announced (0 = unknown): room is reserved for it.
uint64_t declared_length(const Ctx& c) { return body_length(c).value_or(0); }

// A body of known length small enough to be received whole before the
// write is checked and opened (one thread hop per PUT instead of two).
bool small_body(const Ctx& c) {
  constexpr uint64_t kSmallBody = 64 * 1024;
  auto len = body_length(c);
  return len && *len <= kSmallBody;
}

// Blocking: appends the last piece of the body and commits the object.
Result<store::ObjectMeta> finish_body(Ctx& c, std::unique_ptr<store::FileWriter> file, const std::string& tail,
                                      const ObjectAttrs& a, const PutConditions& cond) {
  Status st = file->append(tail.data(), tail.size());
  if (!st.ok()) return st;
  return c.engine().finish_put(c.bucket, c.key, std::move(file), a, cond);
}

// The bytes a GET will read, when the request says so plainly ("bytes=N-"
// or "bytes=N-M"; none for suffix ranges and part numbers).
std::optional<std::pair<uint64_t, uint64_t>> read_span(const Ctx& c, bool head) {
  if (head || c.has("partNumber")) return std::nullopt;
  const std::string* r = c.req.header("range");
  if (!r) return std::pair<uint64_t, uint64_t>(0, UINT64_MAX);
  if (r->rfind("bytes=", 0) != 0 || r->size() < 7 || !std::isdigit(static_cast<unsigned char>((*r)[6])) ||
      r->find(',') != std::string::npos)
    return std::nullopt;
  char* end = nullptr;
  uint64_t first = std::strtoull(r->c_str() + 6, &end, 10);
  uint64_t last = UINT64_MAX;
  if (end && *end == '-' && std::isdigit(static_cast<unsigned char>(end[1]))) last = std::strtoull(end + 1, nullptr, 10);
  if (last < first) return std::nullopt;
  return std::pair<uint64_t, uint64_t>(first, last);
}

awaitable<void> get_object(Ctx& c, bool head) {
  auto start = read_span(c, head);
  // Small objects held in memory are answered without leaving this thread.
  Result<store::ReadHandle> h = not_found("");
  if (auto hot = c.engine().open_hot(c.bucket, c.key)) h = std::move(*hot);
  else h = co_await c.blocking([&] { return c.engine().open_object(c.bucket, c.key, start); });
  if (!h.ok()) {
    co_await send_error(c, h.status());
    co_return;
  }
  const store::ObjectMeta& m = h->meta();
  Status st = check_read_conditions(c.req, m);
  if (!st.ok()) {
    if (st.s3_code() && std::string(st.s3_code()) == "NotModified") {
      Headers hh;
      hh.emplace_back("ETag", quote_etag(m.etag));
      hh.emplace_back("Last-Modified", http_date(m.mtime_ms));
      hh.emplace_back("x-amz-request-id", c.request_id);
      (void)co_await c.resp.send_head(304, hh, 0);
      co_return;
    }
    co_await send_error(c, st);
    co_return;
  }
  bool checksums = c.req.header_or("x-amz-checksum-mode") == "ENABLED";
  Headers hdrs = object_headers(m, checksums);
  uint64_t first = 0, len = m.size;
  int status = 200;
  if (c.has("partNumber")) {
    if (c.req.header("range")) {
      co_await send_error(c, s3_error("InvalidRequest", "Cannot specify both Range header and partNumber query parameter"));
      co_return;
    }
    int pn = 0;
    const std::string& pq = c.q("partNumber");
    if (!pq.empty() && pq.size() <= 5 && pq.find_first_not_of("0123456789") == std::string::npos) pn = std::stoi(pq);
    size_t parts = m.part_sizes.empty() ? 1 : m.part_sizes.size();
    if (pn < 1 || static_cast<size_t>(pn) > parts) {
      co_await send_error(c, s3_error("InvalidPartNumber", "The requested partnumber is not satisfiable"));
      co_return;
    }
    if (!m.part_sizes.empty()) {
      for (int i = 0; i < pn - 1; ++i) first += m.part_sizes[static_cast<size_t>(i)];
      len = m.part_sizes[static_cast<size_t>(pn - 1)];
      hdrs.emplace_back("x-amz-mp-parts-count", std::to_string(parts));
      if (parts > 1 || first > 0 || len != m.size) {
        status = 206;
        hdrs.emplace_back("Content-Range", fmt::format("bytes {}-{}/{}", first, first + len - 1, m.size));
      }
    }
  } else if (auto rh = c.req.header("range")) {
    auto r = parse_range(*rh, m.size);
    if (!r.ok()) {
      c.resp.close_after();
      Headers eh;
      eh.emplace_back("Content-Range", fmt::format("bytes */{}", m.size));
      S3Error e = to_s3_error(r.status());
      std::string xml = error_xml(e, c.resource(), c.request_id);
      eh.emplace_back("Content-Type", "application/xml");
      eh.emplace_back("x-amz-request-id", c.request_id);
      if (head) xml.clear();
      if ((co_await c.resp.send_head(416, eh, xml.size())).ok() && !xml.empty())
        (void)co_await c.resp.send_body(xml.data(), xml.size());
      co_return;
    }
    if (r.value()) {
      // A range has no checksum of its own: never send the whole object's.
      std::erase_if(hdrs, [](const auto& kv) { return kv.first.rfind("x-amz-checksum-", 0) == 0; });
      first = r.value()->first;
      len = r.value()->length();
      status = 206;
      hdrs.emplace_back("Content-Range", fmt::format("bytes {}-{}/{}", first, r.value()->last, m.size));
    }
  }
  // response-* overrides (signed requests only, as in S3).
  static const std::pair<const char*, const char*> kOverrides[] = {
      {"response-content-type", "Content-Type"},       {"response-content-language", "content-language"},
      {"response-expires", "expires"},                 {"response-cache-control", "cache-control"},
      {"response-content-disposition", "content-disposition"}, {"response-content-encoding", "content-encoding"}};
  for (auto& [q, name] : kOverrides) {
    if (!c.has(q)) continue;
    std::string lname = name;
    for (auto& ch : lname) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    std::erase_if(hdrs, [&](const auto& kv) {
      std::string k = kv.first;
      for (auto& ch : k) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      return k == lname;
    });
    hdrs.emplace_back(name, c.q(q));
  }
  hdrs.emplace_back("x-amz-request-id", c.request_id);
  const store::ReadHandle* hp = &h.value();
  auto view = head ? std::nullopt : hp->memory_view(first, len);
  if (head || view) {
    if (!(co_await c.resp.send_head(status, hdrs, len)).ok() || head) co_return;
    if (len > 0) (void)co_await c.resp.send_body(view->data(), view->size());  // sent from where they are
    co_return;
  }
  constexpr size_t kChunk = 1 << 20;
  std::vector<char> buf(std::min<uint64_t>(kChunk, std::max<uint64_t>(len, 1)));
  hp->hint(first, len);
  uint64_t off = first, end = first + len;
  auto read_at = [&](uint64_t at) -> Result<size_t> {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), end - at));
    size_t got = 0;
    while (got < want) {
      auto r = hp->pread(at + got, buf.data() + got, want - got);
      if (!r.ok()) return r.status();
      if (*r == 0) break;
      got += *r;
    }
    return got;
  };
  // The first chunk is read before the status line: a failure to get it (the
  // under store down, the object changed there) is an S3 error, not a cut body.
  for (bool first_chunk = true;; first_chunk = false) {
    Result<size_t> n = size_t{0};
    // Data kept in the index is already in memory: no thread hop.
    if (off < end) n = hp->in_memory() ? read_at(off) : co_await c.blocking([&] { return read_at(off); });
    bool failed = !n.ok() || (off < end && *n == 0);
    if (first_chunk && failed) {
      co_await send_error(c, n.ok() ? io_error("the object's data ended early") : n.status());
      co_return;
    }
    if (failed) {
      c.resp.close_after();  // the length was promised: the client sees a short body
      co_return;
    }
    if (first_chunk && !(co_await c.resp.send_head(status, hdrs, len)).ok()) co_return;
    if (off >= end || !(co_await c.resp.send_body(buf.data(), *n)).ok()) co_return;
    off += *n;
  }
}

Result<std::pair<std::string, std::string>> parse_copy_source(const std::string& raw) {
  std::string s = raw;
  auto q = s.find('?');
  if (q != std::string::npos) {
    std::string qs = s.substr(q + 1);
    if (qs.rfind("versionId=", 0) == 0 && qs.substr(10) != "null")
      return s3_error("NoSuchVersion", "The specified version does not exist.");
    s = s.substr(0, q);
  }
  auto dec = uri_decode(s);
  if (!dec) return s3_error("InvalidArgument", "Invalid copy source encoding");
  std::string p = *dec;
  if (!p.empty() && p[0] == '/') p = p.substr(1);
  auto slash = p.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= p.size())
    return s3_error("InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey");
  return std::make_pair(p.substr(0, slash), p.substr(slash + 1));
}

awaitable<void> copy_object(Ctx& c) {
  auto src = parse_copy_source(c.req.header_or("x-amz-copy-source"));
  if (!src.ok()) {
    co_await send_error(c, src.status());
    co_return;
  }
  std::string sb = src->first, sk = src->second;
  std::string directive = c.req.header_or("x-amz-metadata-directive", "COPY");
  std::string tag_directive = c.req.header_or("x-amz-tagging-directive", "COPY");
  if ((directive != "COPY" && directive != "REPLACE") || (tag_directive != "COPY" && tag_directive != "REPLACE")) {
    co_await send_error(c, s3_error("InvalidArgument", "Unknown metadata directive."));
    co_return;
  }
  if (sb == c.bucket && sk == c.key && directive == "COPY" && tag_directive == "COPY") {
    co_await send_error(c, s3_error("InvalidRequest",
                                    "This copy request is illegal because it is trying to copy an object to itself without "
                                    "changing the object's metadata, storage class, website redirect location or encryption attributes."));
    co_return;
  }
  auto attrs = attrs_from_headers(c.req);
  if (!attrs.ok()) {
    co_await send_error(c, attrs.status());
    co_return;
  }
  Status chk = co_await c.blocking([&] { return c.engine().check_write(c.bucket, c.key); });
  if (!chk.ok()) {
    co_await send_error(c, chk);
    co_return;
  }
  auto h = co_await c.blocking([&] { return c.engine().open_object(sb, sk); });
  if (!h.ok()) {
    co_await send_error(c, h.status());
    co_return;
  }
  const store::ObjectMeta& sm = h->meta();
  Status st = check_read_conditions(c.req, sm, "x-amz-copy-source-");
  if (st.ok()) st = check_copy_size(sm.size);
  if (!st.ok()) {
    co_await send_error(c, st);
    co_return;
  }
  ObjectAttrs a = attrs.value();
  if (directive == "COPY") {
    a.content_type = sm.content_type;
    a.headers = sm.headers;
    a.user_meta = sm.user_meta;
  }
  if (tag_directive == "COPY") a.tags = sm.tags;
  const store::ReadHandle* hp = &h.value();
  auto meta = co_await c.blocking([&]() -> Result<store::ObjectMeta> {
    auto f = c.engine().copy_to_file(*hp, 0, hp->meta().size, c.bucket, c.key);
    if (!f.ok()) return f.status();
    return c.engine().finish_put(c.bucket, c.key, std::move(f.value()), a, PutConditions{});
  });
  if (!meta.ok()) {
    co_await send_error(c, meta.status());
    co_return;
  }
  XmlWriter w;
  w.open("CopyObjectResult", true);
  w.elem("LastModified", iso8601(meta->mtime_ms));
  w.elem("ETag", quote_etag(meta->etag));
  w.close("CopyObjectResult");
  Headers rh;
  rh.emplace_back("x-reservoir-persist-state", store::persist_state_name(meta->state));
  co_await send_xml(c, 200, w.take(), rh);
}

awaitable<void> put_object(Ctx& c) {
  if (c.req.header("x-amz-copy-source")) {
    co_await copy_object(c);
    co_return;
  }
  auto attrs = attrs_from_headers(c.req);
  if (!attrs.ok()) {
    co_await send_error(c, attrs.status());
    co_return;
  }
  PutConditions cond;
  if (auto im = c.req.header("if-match")) cond.if_match = strip_quotes(*im);
  if (auto inm = c.req.header("if-none-match")) {
    if (strip_quotes(*inm) != "*") {
      co_await send_error(c, s3_error("NotImplemented", "If-None-Match on PUT supports only '*'"));
      co_return;
    }
    cond.if_none_match_star = true;
  }
  ObjectAttrs a = attrs.value();
  std::string tail;
  Result<store::ObjectMeta> meta = internal_error("");
  if (small_body(c)) {
    // The whole body first, then one hop validates, writes and commits it.
    Status rs = co_await receive_body(c, nullptr, a.checksums, tail);
    if (!rs.ok()) {
      co_await send_error(c, rs);
      co_return;
    }
    meta = co_await c.blocking([&]() -> Result<store::ObjectMeta> {
      Status st = c.engine().check_write(c.bucket, c.key, tail.size());
      if (!st.ok()) return st;
      auto file = c.engine().new_file(tail.size(), c.bucket, c.key);
      if (!file.ok()) return file.status();
      return finish_body(c, std::move(file.value()), tail, a, cond);
    });
  } else {
    // One hop validates the write and opens its data; one more commits it.
    auto file = co_await c.blocking([&]() -> Result<std::unique_ptr<store::FileWriter>> {
      Status st = c.engine().check_write(c.bucket, c.key, declared_length(c));
      if (!st.ok()) return st;
      return c.engine().new_file(declared_length(c), c.bucket, c.key);
    });
    if (!file.ok()) {
      co_await send_error(c, file.status());
      co_return;
    }
    Status rs = co_await receive_body(c, file.value().get(), a.checksums, tail);
    if (!rs.ok()) {
      co_await send_error(c, rs);
      co_return;
    }
    meta = co_await c.blocking([&] { return finish_body(c, std::move(file.value()), tail, a, cond); });
  }
  if (!meta.ok()) {
    co_await send_error(c, meta.status());
    co_return;
  }
  Headers h;
  h.emplace_back("ETag", quote_etag(meta->etag));
  h.emplace_back("x-reservoir-persist-state", store::persist_state_name(meta->state));
  for (auto& [algo, v] : a.checksums) h.emplace_back("x-amz-checksum-" + algo, v);
  co_await send_empty(c, 200, h);
}

awaitable<void> delete_object(Ctx& c) {
  Status st = co_await c.blocking([&] { return c.engine().delete_object(c.bucket, c.key); });
  if (!st.ok() && st.s3_code() && std::string(st.s3_code()) == "NoSuchKey") st = ok_status();
  if (!st.ok()) {
    co_await send_error(c, st);
    co_return;
  }
  co_await send_empty(c, 204);
}

awaitable<void> get_tagging(Ctx& c) {
  auto m = co_await c.blocking([&] { return c.engine().head_object(c.bucket, c.key); });
  if (!m.ok()) {
    co_await send_error(c, m.status());
    co_return;
  }
  XmlWriter w;
  w.open("Tagging", true);
  w.open("TagSet");
  for (auto& [k, v] : m->tags) {
    w.open("Tag");
    w.elem("Key", k);
    w.elem("Value", v);
    w.close("Tag");
  }
  w.close("TagSet");
  w.close("Tagging");
  co_await send_xml(c, 200, w.take());
}

awaitable<void> put_tagging(Ctx& c, bool remove) {
  store::Tags tags;
  if (!remove) {
    auto body = co_await read_small_body(c, 64 * 1024);
    if (!body.ok()) {
      co_await send_error(c, body.status());
      co_return;
    }
    auto t = parse_tagging(*body);
    if (!t.ok()) {
      co_await send_error(c, t.status());
      co_return;
    }
    tags = t.value();
  }
  Status st = co_await c.blocking([&] { return c.engine().put_tags(c.bucket, c.key, tags); });
  if (!st.ok()) {
    co_await send_error(c, st);
    co_return;
  }
  co_await send_empty(c, remove ? 204 : 200);
}

awaitable<void> get_attributes(Ctx& c) {
  auto m = co_await c.blocking([&] { return c.engine().head_object(c.bucket, c.key); });
  if (!m.ok()) {
    co_await send_error(c, m.status());
    co_return;
  }
  std::string want = c.req.header_or("x-amz-object-attributes");
  if (want.empty()) {
    co_await send_error(c, s3_error("InvalidArgument", "The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty"));
    co_return;
  }
  auto has = [&](const char* a) { return want.find(a) != std::string::npos; };
  XmlWriter w;
  w.open("GetObjectAttributesResponse", true);
  if (has("ETag")) w.elem("ETag", m->etag);
  if (has("Checksum") && !m->checksums.empty()) {
    w.open("Checksum");
    for (auto& [algo, v] : m->checksums) {
      std::string name = "Checksum" + std::string(algo == "crc32" ? "CRC32" : algo == "crc32c" ? "CRC32C" : algo == "sha1" ? "SHA1" : algo == "sha256" ? "SHA256" : "CRC64NVME");
      w.elem(name, v);
    }
    w.close("Checksum");
  }
  if (has("ObjectParts") && !m->part_sizes.empty()) {
    w.open("ObjectParts");
    w.elem("TotalPartsCount", m->part_sizes.size());
    w.elem("PartsCount", m->part_sizes.size());
    w.close("ObjectParts");
  }
  if (has("StorageClass")) w.elem("StorageClass", "STANDARD");
  if (has("ObjectSize")) w.elem("ObjectSize", m->size);
  w.close("GetObjectAttributesResponse");
  Headers h;
  h.emplace_back("Last-Modified", http_date(m->mtime_ms));
  co_await send_xml(c, 200, w.take(), h);
}

awaitable<void> get_acl(Ctx& c) {
  if (!c.key.empty()) {
    auto m = co_await c.blocking([&] { return c.engine().head_object(c.bucket, c.key); });
    if (!m.ok()) {
      co_await send_error(c, m.status());
      co_return;
    }
  }
  XmlWriter w;
  w.open("AccessControlPolicy", true);
  w.open("Owner");
  w.elem("ID", kOwnerId);
  w.elem("DisplayName", "reservoir");
  w.close("Owner");
  w.open("AccessControlList");
  std::string xml = w.take();
  xml += "<Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\"><ID>";
  xml += kOwnerId;
  xml += "</ID><DisplayName>reservoir</DisplayName></Grantee><Permission>FULL_CONTROL</Permission></Grant>";
  xml += "</AccessControlList></AccessControlPolicy>";
  co_await send_xml(c, 200, xml);
}

// --- multipart ---

awaitable<void> create_upload(Ctx& c) {
  auto attrs = attrs_from_headers(c.req);
  if (!attrs.ok()) {
    co_await send_error(c, attrs.status());
    co_return;
  }
  ObjectAttrs a = attrs.value();
  auto id = co_await c.blocking([&] { return c.engine().create_upload(c.bucket, c.key, a); });
  if (!id.ok()) {
    co_await send_error(c, id.status());
    co_return;
  }
  XmlWriter w;
  w.open("InitiateMultipartUploadResult", true);
  w.elem("Bucket", c.bucket);
  w.elem("Key", c.key);
  w.elem("UploadId", *id);
  w.close("InitiateMultipartUploadResult");
  co_await send_xml(c, 200, w.take());
}

Result<int> part_number(const Ctx& c) {
  std::string s = c.q("partNumber");
  if (s.empty() || s.size() > 5 || s.find_first_not_of("0123456789") != std::string::npos)
    return s3_error("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive");
  int n = std::stoi(s);
  if (n < 1 || n > 10000) return s3_error("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive");
  return n;
}

awaitable<void> upload_part(Ctx& c) {
  auto pn = part_number(c);
  if (!pn.ok()) {
    co_await send_error(c, pn.status());
    co_return;
  }
  std::string upload_id = c.q("uploadId");
  auto up = co_await c.blocking([&] { return c.engine().get_upload(c.bucket, c.key, upload_id); });
  if (!up.ok()) {
    co_await send_error(c, up.status());
    co_return;
  }
  Result<std::unique_ptr<store::FileWriter>> file = internal_error("unset");
  std::map<std::string, std::string> checksums;
  bool is_copy = c.req.header("x-amz-copy-source") != nullptr;
  store::ObjectMeta src_meta;
  if (is_copy) {
    auto src = parse_copy_source(c.req.header_or("x-amz-copy-source"));
    if (!src.ok()) {
      co_await send_error(c, src.status());
      co_return;
    }
    std::string sb = src->first, sk = src->second;
    auto h = co_await c.blocking([&] { return c.engine().open_object(sb, sk); });
    if (!h.ok()) {
      co_await send_error(c, h.status());
      co_return;
    }
    src_meta = h->meta();
    Status st = check_read_conditions(c.req, src_meta, "x-amz-copy-source-");
    if (!st.ok()) {
      co_await send_error(c, st);
      co_return;
    }
    uint64_t first = 0, len = src_meta.size;
    if (auto rh = c.req.header("x-amz-copy-source-range")) {
      auto r = parse_range(*rh, src_meta.size);
      bool inside = false;
      if (r.ok() && r.value() && rh->find("bytes=-") == std::string::npos) {
        // Unlike GET, a copy range must lie wholly inside the source.
        auto dash = rh->find('-');
        try {
          inside = std::stoull(rh->substr(dash + 1)) < src_meta.size;
        } catch (...) {
        }
      }
      if (!inside) {
        co_await send_error(c, s3_error("InvalidArgument", "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy"));
        co_return;
      }
      first = r.value()->first;
      len = r.value()->length();
    }
    if (Status big = check_copy_size(len); !big.ok()) {
      co_await send_error(c, big);
      co_return;
    }
    const store::ReadHandle* hp = &h.value();
    file = co_await c.blocking([&] { return c.engine().copy_to_file(*hp, first, len); });
  } else {
    file = co_await c.blocking([&] { return c.engine().new_file(declared_length(c)); });
    if (file.ok()) {
      std::string tail;
      Status rs = co_await receive_body(c, file.value().get(), checksums, tail);
      if (rs.ok()) rs = co_await c.blocking([&] { return file.value()->append(tail.data(), tail.size()); });
      if (!rs.ok()) file = rs;
    }
  }
  if (!file.ok()) {
    co_await send_error(c, file.status());
    co_return;
  }
  auto etag = co_await c.blocking([&] {
    return c.engine().put_part(upload_id, *pn, std::move(file.value()));
  });
  if (!etag.ok()) {
    co_await send_error(c, etag.status());
    co_return;
  }
  if (is_copy) {
    XmlWriter w;
    w.open("CopyPartResult", true);
    w.elem("LastModified", iso8601(store::now_ms()));
    w.elem("ETag", quote_etag(*etag));
    w.close("CopyPartResult");
    co_await send_xml(c, 200, w.take());
    co_return;
  }
  Headers h;
  h.emplace_back("ETag", quote_etag(*etag));
  for (auto& [algo, v] : checksums) h.emplace_back("x-amz-checksum-" + algo, v);
  co_await send_empty(c, 200, h);
}

awaitable<void> complete_upload(Ctx& c) {
  auto body = co_await read_small_body(c, 4 << 20);
  if (!body.ok()) {
    co_await send_error(c, body.status());
    co_return;
  }
  auto refs = parse_complete_multipart(*body);
  if (!refs.ok()) {
    co_await send_error(c, refs.status());
    co_return;
  }
  std::vector<CompletedPart> parts;
  for (auto& r : *refs) parts.push_back({r.number, r.etag});
  std::string upload_id = c.q("uploadId");
  auto meta = co_await c.blocking([&] {
    return c.engine().complete_upload(c.bucket, c.key, upload_id, parts);
  });
  if (!meta.ok()) {
    co_await send_error(c, meta.status());
    co_return;
  }
  XmlWriter w;
  w.open("CompleteMultipartUploadResult", true);
  w.elem("Location", "/" + c.bucket + "/" + c.key);
  w.elem("Bucket", c.bucket);
  w.elem("Key", c.key);
  w.elem("ETag", quote_etag(meta->etag));
  w.close("CompleteMultipartUploadResult");
  Headers h;
  h.emplace_back("x-reservoir-persist-state", store::persist_state_name(meta->state));
  co_await send_xml(c, 200, w.take(), h);
}

awaitable<void> abort_upload(Ctx& c) {
  std::string upload_id = c.q("uploadId");
  Status st = co_await c.blocking([&] { return c.engine().abort_upload(c.bucket, c.key, upload_id); });
  if (!st.ok()) {
    co_await send_error(c, st);
    co_return;
  }
  co_await send_empty(c, 204);
}

awaitable<void> list_parts(Ctx& c) {
  std::string upload_id = c.q("uploadId");
  auto up = co_await c.blocking([&] { return c.engine().get_upload(c.bucket, c.key, upload_id); });
  if (!up.ok()) {
    co_await send_error(c, up.status());
    co_return;
  }
  auto parts = co_await c.blocking([&] { return c.engine().list_parts(upload_id); });
  if (!parts.ok()) {
    co_await send_error(c, parts.status());
    co_return;
  }
  int max_parts = 1000, marker = 0;
  bool bad = false;
  try {
    if (c.has("max-parts")) max_parts = std::clamp(std::stoi(c.q("max-parts")), 0, 1000);
    if (c.has("part-number-marker")) marker = std::stoi(c.q("part-number-marker"));
  } catch (...) {
    bad = true;
  }
  if (bad) {
    co_await send_error(c, s3_error("InvalidArgument", "max-parts and part-number-marker must be integers"));
    co_return;
  }
  XmlWriter w;
  w.open("ListPartsResult", true);
  w.elem("Bucket", c.bucket);
  w.elem("Key", c.key);
  w.elem("UploadId", upload_id);
  w.open("Initiator");
  w.elem("ID", kOwnerId);
  w.elem("DisplayName", "reservoir");
  w.close("Initiator");
  w.open("Owner");
  w.elem("ID", kOwnerId);
  w.elem("DisplayName", "reservoir");
  w.close("Owner");
  w.elem("StorageClass", "STANDARD");
  w.elem("PartNumberMarker", std::to_string(marker));
  int count = 0, last = marker;
  bool truncated = false;
  std::string body;
  XmlWriter pw;
  for (auto& p : *parts) {
    if (p.number <= marker) continue;
    if (count == max_parts) {
      truncated = true;
      break;
    }
    w.open("Part");
    w.elem("PartNumber", std::to_string(p.number));
    w.elem("LastModified", iso8601(p.mtime_ms));
    w.elem("ETag", quote_etag(p.etag));
    w.elem("Size", p.size);
    w.close("Part");
    last = p.number;
    ++count;
  }
  w.elem("NextPartNumberMarker", std::to_string(last));
  w.elem("MaxParts", std::to_string(max_parts));
  w.elem_bool("IsTruncated", truncated);
  w.close("ListPartsResult");
  co_await send_xml(c, 200, w.take());
}

}  // namespace

awaitable<void> handle_object(Ctx& c) {
  const std::string& m = c.req.method;
  static const char* kUnsupported[] = {"retention", "legal-hold", "restore", "select", "torrent"};
  for (const char* q : kUnsupported)
    if (c.has(q)) {
      co_await send_error(c, s3_error("NotImplemented", std::string("The ") + q + " subresource is not implemented"));
      co_return;
    }
  if (c.has("acl")) {
    if (m == "GET") co_await get_acl(c);
    else co_await send_error(c, s3_error("NotImplemented", "Object ACLs cannot be changed; the owner has FULL_CONTROL"));
    co_return;
  }
  if (c.has("tagging")) {
    if (m == "GET") co_await get_tagging(c);
    else if (m == "PUT") co_await put_tagging(c, false);
    else if (m == "DELETE") co_await put_tagging(c, true);
    else co_await send_error(c, s3_error("MethodNotAllowed"));
    co_return;
  }
  if (c.has("attributes") && m == "GET") {
    co_await get_attributes(c);
    co_return;
  }
  if (c.has("uploads") && m == "POST") {
    co_await create_upload(c);
    co_return;
  }
  if (c.has("uploadId")) {
    if (m == "PUT") co_await upload_part(c);
    else if (m == "POST") co_await complete_upload(c);
    else if (m == "DELETE") co_await abort_upload(c);
    else if (m == "GET") co_await list_parts(c);
    else co_await send_error(c, s3_error("MethodNotAllowed"));
    co_return;
  }
  if (m == "GET") co_await get_object(c, false);
  else if (m == "HEAD") co_await get_object(c, true);
  else if (m == "PUT") co_await put_object(c);
  else if (m == "DELETE") co_await delete_object(c);
  else co_await send_error(c, s3_error("MethodNotAllowed"));
}

}  // namespace reservoir::s3
