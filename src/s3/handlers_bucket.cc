// Service- and bucket-level S3 operations: ListBuckets, Create/Head/Delete
// bucket, location, listings (v1, v2, versions, multipart uploads) and
// DeleteObjects.
#include <fmt/format.h>

#include "common/hash.h"
#include "s3/handlers_internal.h"
#include "s3/names.h"

namespace reservoir::s3 {

namespace {

constexpr const char* kOwnerId = "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a";

void owner(XmlWriter& w, const char* tag = "Owner") {
  w.open(tag);
  w.elem("ID", kOwnerId);
  w.elem("DisplayName", "reservoir");
  w.close(tag);
}

awaitable<void> list_buckets(Ctx& c) {
  auto bs = co_await c.blocking([&] { return c.engine().list_buckets(); });
  if (!bs.ok()) {
    co_await send_error(c, bs.status());
    co_return;
  }
  XmlWriter w;
  w.open("ListAllMyBucketsResult", true);
  owner(w);
  w.open("Buckets");
  for (auto& b : *bs) {
    w.open("Bucket");
    w.elem("Name", b.name);
    w.elem("CreationDate", iso8601(b.created_ms));
    w.close("Bucket");
  }
  w.close("Buckets");
  w.close("ListAllMyBucketsResult");
  co_await send_xml(c, 200, w.take());
}

Result<int> max_keys(const Ctx& c, const char* name) {
  if (!c.has(name)) return 1000;
  std::string s = c.q(name);
  if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos)
    return s3_error("InvalidArgument", fmt::format("Provided {} not an integer or within integer range", name));
  return std::min(1000, std::stoi(s));
}

std::string enc(const Ctx& c, const std::string& s) { return c.q("encoding-type") == "url" ? uri_encode(s, false) : s; }

awaitable<void> list_objects(Ctx& c, int version) {
  auto mk = max_keys(c, "max-keys");
  if (!mk.ok()) {
    co_await send_error(c, mk.status());
    co_return;
  }
  if (c.has("encoding-type") && c.q("encoding-type") != "url") {
    co_await send_error(c, s3_error("InvalidArgument", "Invalid Encoding Method specified in Request"));
    co_return;
  }
  ListRequest lr;
  lr.prefix = c.q("prefix");
  lr.delimiter = c.q("delimiter");
  lr.max_keys = *mk;
  std::string token;
  if (version == 2) {
    if (c.has("continuation-token")) {
      auto d = base64_decode(c.q("continuation-token"));
      if (!d || c.q("continuation-token").empty()) {
        co_await send_error(c, s3_error("InvalidArgument", "The continuation token provided is incorrect"));
        co_return;
      }
      lr.start_after = *d;
    } else {
      lr.start_after = c.q("start-after");
    }
  } else {
    lr.start_after = c.q("marker");
  }
  auto res = co_await c.blocking([&] { return c.engine().list(c.bucket, lr); });
  if (!res.ok()) {
    co_await send_error(c, res.status());
    co_return;
  }
  bool fetch_owner = version == 1 || c.q("fetch-owner") == "true";
  XmlWriter w;
  w.open("ListBucketResult", true);
  w.elem("Name", c.bucket);
  w.elem("Prefix", enc(c, lr.prefix));
  if (version == 2) {
    if (c.has("continuation-token")) w.elem("ContinuationToken", c.q("continuation-token"));
    if (c.has("start-after")) w.elem("StartAfter", enc(c, c.q("start-after")));
    w.elem("KeyCount", res->contents.size() + res->common_prefixes.size());
  } else {
    w.elem("Marker", enc(c, c.q("marker")));
  }
  w.elem("MaxKeys", static_cast<uint64_t>(lr.max_keys));
  if (!lr.delimiter.empty()) w.elem("Delimiter", enc(c, lr.delimiter));
  w.elem_bool("IsTruncated", res->truncated);
  if (res->truncated) {
    if (version == 2) w.elem("NextContinuationToken", base64_encode(res->next_marker));
    else if (!lr.delimiter.empty()) w.elem("NextMarker", enc(c, res->next_marker));
  }
  if (c.has("encoding-type")) w.elem("EncodingType", "url");
  for (auto& e : res->contents) {
    w.open("Contents");
    w.elem("Key", enc(c, e.key));
    w.elem("LastModified", iso8601(e.mtime_ms));
    w.elem("ETag", quote_etag(e.etag));
    w.elem("Size", e.size);
    if (fetch_owner) owner(w);
    w.elem("StorageClass", "STANDARD");
    w.close("Contents");
  }
  for (auto& p : res->common_prefixes) {
    w.open("CommonPrefixes");
    w.elem("Prefix", enc(c, p));
    w.close("CommonPrefixes");
  }
  w.close("ListBucketResult");
  co_await send_xml(c, 200, w.take());
}

awaitable<void> list_versions(Ctx& c) {
  auto mk = max_keys(c, "max-keys");
  if (!mk.ok()) {
    co_await send_error(c, mk.status());
    co_return;
  }
  ListRequest lr;
  lr.prefix = c.q("prefix");
  lr.delimiter = c.q("delimiter");
  lr.max_keys = *mk;
  lr.start_after = c.q("key-marker");
  auto res = co_await c.blocking([&] { return c.engine().list(c.bucket, lr); });
  if (!res.ok()) {
    co_await send_error(c, res.status());
    co_return;
  }
  XmlWriter w;
  w.open("ListVersionsResult", true);
  w.elem("Name", c.bucket);
  w.elem("Prefix", enc(c, lr.prefix));
  w.elem("KeyMarker", enc(c, lr.start_after));
  w.elem("VersionIdMarker", c.q("version-id-marker"));
  if (res->truncated) {
    w.elem("NextKeyMarker", enc(c, res->next_marker));
    w.elem("NextVersionIdMarker", "null");
  }
  w.elem("MaxKeys", static_cast<uint64_t>(lr.max_keys));
  if (!lr.delimiter.empty()) w.elem("Delimiter", enc(c, lr.delimiter));
  w.elem_bool("IsTruncated", res->truncated);
  if (c.has("encoding-type")) w.elem("EncodingType", "url");
  for (auto& e : res->contents) {
    w.open("Version");
    w.elem("Key", enc(c, e.key));
    w.elem("VersionId", "null");
    w.elem_bool("IsLatest", true);
    w.elem("LastModified", iso8601(e.mtime_ms));
    w.elem("ETag", quote_etag(e.etag));
    w.elem("Size", e.size);
    owner(w);
    w.elem("StorageClass", "STANDARD");
    w.close("Version");
  }
  for (auto& p : res->common_prefixes) {
    w.open("CommonPrefixes");
    w.elem("Prefix", enc(c, p));
    w.close("CommonPrefixes");
  }
  w.close("ListVersionsResult");
  co_await send_xml(c, 200, w.take());
}

awaitable<void> list_uploads(Ctx& c) {
  auto ups = co_await c.blocking([&] { return c.engine().list_uploads(c.bucket); });
  if (!ups.ok()) {
    co_await send_error(c, ups.status());
    co_return;
  }
  auto mk = max_keys(c, "max-uploads");
  if (!mk.ok()) {
    co_await send_error(c, mk.status());
    co_return;
  }
  std::string prefix = c.q("prefix"), key_marker = c.q("key-marker"), id_marker = c.q("upload-id-marker");
  std::sort(ups->begin(), ups->end(), [](const auto& a, const auto& b) {
    return a.key != b.key ? a.key < b.key : a.initiated_ms != b.initiated_ms ? a.initiated_ms < b.initiated_ms : a.upload_id < b.upload_id;
  });
  XmlWriter w;
  w.open("ListMultipartUploadsResult", true);
  w.elem("Bucket", c.bucket);
  w.elem("KeyMarker", key_marker);
  w.elem("UploadIdMarker", id_marker);
  w.elem("Prefix", prefix);
  w.elem("MaxUploads", static_cast<uint64_t>(*mk));
  std::string delimiter = c.q("delimiter");
  if (!delimiter.empty()) w.elem("Delimiter", delimiter);
  int count = 0;
  bool truncated = false;
  std::string next_key, next_id;
  std::string body;
  XmlWriter items;
  std::vector<std::string> prefixes;
  for (auto& u : *ups) {
    if (u.key.compare(0, prefix.size(), prefix) != 0) continue;
    if (!key_marker.empty() && (u.key < key_marker || (u.key == key_marker && (id_marker.empty() || u.upload_id <= id_marker)))) continue;
    if (count == *mk) {
      truncated = true;
      break;
    }
    if (!delimiter.empty()) {
      auto d = u.key.find(delimiter, prefix.size());
      if (d != std::string::npos) {
        std::string cp = u.key.substr(0, d + delimiter.size());
        if (prefixes.empty() || prefixes.back() != cp) {
          prefixes.push_back(cp);
          ++count;
        }
        continue;
      }
    }
    items.open("Upload");
    items.elem("Key", u.key);
    items.elem("UploadId", u.upload_id);
    owner(items, "Initiator");
    owner(items);
    items.elem("StorageClass", "STANDARD");
    items.elem("Initiated", iso8601(u.initiated_ms));
    items.close("Upload");
    next_key = u.key;
    next_id = u.upload_id;
    ++count;
  }
  if (truncated) {
    w.elem("NextKeyMarker", next_key);
    w.elem("NextUploadIdMarker", next_id);
  }
  w.elem_bool("IsTruncated", truncated);
  std::string xml = w.take();
  std::string it = items.take();
  xml += it.substr(it.find('\n') + 1);  // drop the second XML declaration
  for (auto& p : prefixes) xml += "<CommonPrefixes><Prefix>" + xml_escape(p) + "</Prefix></CommonPrefixes>";
  xml += "</ListMultipartUploadsResult>";
  co_await send_xml(c, 200, xml);
}

awaitable<void> delete_objects(Ctx& c) {
  auto body = co_await read_small_body(c, 2 << 20);
  if (!body.ok()) {
    co_await send_error(c, body.status());
    co_return;
  }
  auto req = parse_delete(*body);
  if (!req.ok()) {
    co_await send_error(c, req.status());
    co_return;
  }
  std::vector<std::string> keys = req->keys;
  auto results = co_await c.blocking([&] {
    std::vector<Status> out;
    for (auto& k : keys) {
      Status st = c.engine().delete_object(c.bucket, k);
      if (!st.ok() && st.s3_code() && std::string(st.s3_code()) == "NoSuchKey") st = ok_status();
      out.push_back(st);
    }
    return out;
  });
  XmlWriter w;
  w.open("DeleteResult", true);
  for (size_t i = 0; i < keys.size(); ++i) {
    if (results[i].ok()) {
      if (req->quiet) continue;
      w.open("Deleted");
      w.elem("Key", keys[i]);
      w.close("Deleted");
    } else {
      S3Error e = to_s3_error(results[i]);
      w.open("Error");
      w.elem("Key", keys[i]);
      w.elem("Code", e.code);
      w.elem("Message", e.message);
      w.close("Error");
    }
  }
  w.close("DeleteResult");
  co_await send_xml(c, 200, w.take());
}

awaitable<void> bucket_status(Ctx& c, const Status& st, int ok_status_code) {
  if (!st.ok()) co_await send_error(c, st);
  else {
    Headers h;
    h.emplace_back("Location", "/" + c.bucket);
    co_await send_empty(c, ok_status_code, h);
  }
}

}  // namespace

awaitable<void> handle_bucket(Ctx& c) {
  const std::string& m = c.req.method;
  if (c.bucket.empty()) {
    if (m == "GET") co_await list_buckets(c);
    else co_await send_error(c, s3_error("MethodNotAllowed"));
    co_return;
  }
  static const char* kUnsupported[] = {"policy", "lifecycle", "cors", "website", "replication", "encryption",
                                       "object-lock", "notification", "logging", "requestPayment", "accelerate",
                                       "analytics", "inventory", "metrics", "intelligent-tiering", "ownershipControls",
                                       "publicAccessBlock", "policyStatus", "tagging"};
  // Reading a configuration Reservoir never has answers what S3 answers for
  // a bucket without one (clients such as s3cmd ask); changing it is 501.
  static const std::pair<const char*, const char*> kNeverConfigured[] = {
      {"policy", "NoSuchBucketPolicy"},
      {"cors", "NoSuchCORSConfiguration"},
      {"lifecycle", "NoSuchLifecycleConfiguration"},
      {"website", "NoSuchWebsiteConfiguration"},
      {"tagging", "NoSuchTagSet"},
      {"encryption", "ServerSideEncryptionConfigurationNotFoundError"},
      {"replication", "ReplicationConfigurationNotFoundError"},
      {"object-lock", "ObjectLockConfigurationNotFoundError"}};
  if (m == "GET")
    for (auto& [q, code] : kNeverConfigured)
      if (c.has(q)) {
        Status st = co_await c.blocking([&] { return c.engine().head_bucket(c.bucket); });
        co_await send_error(c, st.ok() ? s3_error(code) : st);
        co_return;
      }
  for (const char* q : kUnsupported)
    if (c.has(q)) {
      co_await send_error(c, s3_error("NotImplemented", std::string("The bucket ") + q + " subresource is not implemented"));
      co_return;
    }
  if (c.has("versioning")) {
    if (m == "GET") {
      Status st = co_await c.blocking([&] { return c.engine().head_bucket(c.bucket); });
      if (!st.ok()) co_await send_error(c, st);
      else co_await send_xml(c, 200, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>");
    } else {
      co_await send_error(c, s3_error("NotImplemented", "Bucket versioning is not implemented"));
    }
    co_return;
  }
  if (c.has("acl")) {
    if (m != "GET") {
      co_await send_error(c, s3_error("NotImplemented", "Bucket ACLs cannot be changed; the owner has FULL_CONTROL"));
      co_return;
    }
    Status st = co_await c.blocking([&] { return c.engine().head_bucket(c.bucket); });
    if (!st.ok()) {
      co_await send_error(c, st);
      co_return;
    }
    XmlWriter w;
    std::string xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AccessControlPolicy xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Owner><ID>";
    xml += kOwnerId;
    xml += "</ID><DisplayName>reservoir</DisplayName></Owner><AccessControlList><Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\"><ID>";
    xml += kOwnerId;
    xml += "</ID><DisplayName>reservoir</DisplayName></Grantee><Permission>FULL_CONTROL</Permission></Grant></AccessControlList></AccessControlPolicy>";
    co_await send_xml(c, 200, xml);
    co_return;
  }
  if (m == "PUT") {
    // A CreateBucketConfiguration body (LocationConstraint) is accepted and ignored.
    auto body = co_await read_small_body(c, 64 * 1024);
    if (!body.ok()) {
      co_await send_error(c, body.status());
      co_return;
    }
    Status st = co_await c.blocking([&] { return c.engine().create_bucket(c.bucket); });
    co_await bucket_status(c, st, 200);
  } else if (m == "HEAD") {
    Status st = co_await c.blocking([&] { return c.engine().head_bucket(c.bucket); });
    if (!st.ok()) co_await send_error(c, st);
    else {
      Headers h;
      h.emplace_back("x-amz-bucket-region", c.svc.config().auth.region);
      co_await send_empty(c, 200, h);
    }
  } else if (m == "DELETE") {
    Status st = co_await c.blocking([&] { return c.engine().delete_bucket(c.bucket); });
    if (!st.ok()) co_await send_error(c, st);
    else co_await send_empty(c, 204);
  } else if (m == "POST" && c.has("delete")) {
    co_await delete_objects(c);
  } else if (m == "GET") {
    if (c.has("location")) {
      Status st = co_await c.blocking([&] { return c.engine().head_bucket(c.bucket); });
      if (!st.ok()) {
        co_await send_error(c, st);
        co_return;
      }
      std::string region = c.svc.config().auth.region;
      co_await send_xml(c, 200, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">" +
                                     (region == "us-east-1" ? std::string() : xml_escape(region)) + "</LocationConstraint>");
    } else if (c.has("uploads")) {
      co_await list_uploads(c);
    } else if (c.has("versions")) {
      co_await list_versions(c);
    } else if (c.q("list-type") == "2") {
      co_await list_objects(c, 2);
    } else {
      co_await list_objects(c, 1);
    }
  } else {
    co_await send_error(c, s3_error("MethodNotAllowed"));
  }
}

}  // namespace reservoir::s3
