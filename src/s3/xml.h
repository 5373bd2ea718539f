// XML for S3: a small writer for responses, and pugixml-based parsing of
// request bodies (Delete, CompleteMultipartUpload, Tagging).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace reservoir::s3 {

std::string xml_escape(std::string_view s);

class XmlWriter {
 public:
  XmlWriter() { out_ = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"; }
  // Opens <name>, with the S3 namespace when ns is true.
  void open(std::string_view name, bool ns = false);
  void close(std::string_view name);
  void elem(std::string_view name, std::string_view text);
  void elem(std::string_view name, uint64_t v) { elem(name, std::to_string(v)); }
  void elem_bool(std::string_view name, bool v) { elem(name, v ? "true" : "false"); }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// ISO 8601 with milliseconds, UTC: 2006-02-03T16:45:09.000Z
std::string iso8601(int64_t ms);
// RFC 1123: Fri, 03 Feb 2006 16:45:09 GMT
std::string http_date(int64_t ms);
// Parses RFC 1123 / RFC 850 / asctime dates; -1 if malformed.
int64_t parse_http_date(std::string_view s);

struct DeleteRequest {
  bool quiet = false;
  std::vector<std::string> keys;
};
// Errors: MalformedXML.
Result<DeleteRequest> parse_delete(std::string_view body);

struct PartRef {
  int number = 0;
  std::string etag;
};
Result<std::vector<PartRef>> parse_complete_multipart(std::string_view body);
Result<std::vector<std::pair<std::string, std::string>>> parse_tagging(std::string_view body);

// "k1=v1&k2=v2" as sent in x-amz-tagging (URL-encoded).
Result<std::vector<std::pair<std::string, std::string>>> parse_tag_header(std::string_view header);

}  // namespace reservoir::s3
