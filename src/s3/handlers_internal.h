// Shared pieces of the S3 handlers (handlers*.cc only).
#pragma once

#include <map>
#include <string>

#include "http/io.h"
#include "s3/engine.h"
#include "s3/errors.h"
#include "s3/handlers.h"
#include "s3/sigv4.h"
#include "s3/xml.h"

namespace reservoir::s3 {

using http::awaitable;
using http::Headers;

struct Ctx {
  const http::Request& req;
  http::BodyReader& body;
  http::ResponseWriter& resp;
  S3Service& svc;
  std::string bucket;   // decoded; "" for the service root
  std::string key;      // decoded; "" for bucket-level requests
  std::map<std::string, std::string> query;  // decoded; flags map to ""
  AuthResult auth;
  std::string request_id;

  bool has(const std::string& q) const { return query.count(q) > 0; }
  std::string q(const std::string& name, const std::string& dflt = "") const {
    auto it = query.find(name);
    return it == query.end() ? dflt : it->second;
  }
  std::string resource() const { return key.empty() ? "/" + bucket : "/" + bucket + "/" + key; }
  Engine& engine() { return svc.engine(); }
  template <typename F>
  auto blocking(F fn) {
    return http::run_blocking(svc.pool(), std::move(fn));
  }
};

awaitable<void> send_error(Ctx& c, const Status& st);
// Coroutines take class types by const reference, never by value or with
// default arguments: GCC 12 miscompiles both (SIGILL at entry). Arguments
// that are temporaries live until the end of the awaiting full-expression.
awaitable<void> send_xml(Ctx& c, int status, const std::string& xml, const Headers& extra);
awaitable<void> send_xml(Ctx& c, int status, const std::string& xml);
awaitable<void> send_empty(Ctx& c, int status, const Headers& extra);
awaitable<void> send_empty(Ctx& c, int status);

// The body's length as the client announced it: for an aws-chunked body
// (STREAMING-* payload) its x-amz-decoded-content-length, else Content-Length.
// nullopt when not announced or malformed (the body reader then reports it).
std::optional<uint64_t> body_length(const Ctx& c);
// Reads a small request body (XML) completely, verifying its checksums.
awaitable<Result<std::string>> read_small_body(Ctx& c, size_t max_bytes);
// Streams the request body into `w`, verifying length, payload hash,
// Content-MD5 and x-amz-checksum-* (headers or trailers), and fills
// `checksums` (algo -> base64) with the checksums the client sent. Full 1 MiB
// pieces are written on the blocking pool while the next one is read from
// the socket; the last piece (all of a small body) is left in `tail` for the
// caller to append in the same blocking call that commits the object, saving
// a thread hop per request. With `w` null the whole body must fit in `tail`.
awaitable<Status> receive_body(Ctx& c, store::FileWriter* w, std::map<std::string, std::string>& checksums,
                               std::string& tail);

// Request headers -> object attributes (content headers, x-amz-meta-*, tags).
Result<ObjectAttrs> attrs_from_headers(const http::Request& req);
// Object metadata -> response headers (ETag, Last-Modified, content headers, metadata).
Headers object_headers(const store::ObjectMeta& m, bool with_checksums);
std::string quote_etag(const std::string& etag);
std::string strip_quotes(std::string s);

awaitable<void> handle_bucket(Ctx& c);   // handlers_bucket.cc
awaitable<void> handle_object(Ctx& c);   // handlers_object.cc

}  // namespace reservoir::s3
