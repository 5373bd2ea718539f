// The HTTP request as the S3 layer sees it: no Beast types, so parsing and
// authentication code can be compiled and tested without the network stack.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace reservoir::http {

struct Request {
  std::string method;     // "GET", "PUT", ...
  std::string target;     // request-target exactly as received: "/b/k%20x?uploads"
  std::string raw_path;   // part of target before '?', still percent-encoded
  std::string raw_query;  // part after '?', still percent-encoded ("" when none)
  // Header names lower-cased; values as received. Order kept, repeats kept.
  std::vector<std::pair<std::string, std::string>> headers;
  bool tls = false;

  // First value of a header (name lower-case), or nullptr.
  const std::string* header(std::string_view name) const {
    for (const auto& [k, v] : headers)
      if (k == name) return &v;
    return nullptr;
  }
  std::string header_or(std::string_view name, std::string_view dflt = "") const {
    const std::string* v = header(name);
    return v ? *v : std::string(dflt);
  }
};

}  // namespace reservoir::http
