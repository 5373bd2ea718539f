#include "s3/xml.h"

#include <ctime>
#include <set>

#include <fmt/format.h>
#include <pugixml.hpp>

#include "s3/errors.h"
#include "s3/names.h"

namespace reservoir::s3 {

std::string xml_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (static_cast<unsigned char>(c) >= 0x80) {
      // XML is UTF-8: bytes that are not (a raw key echoed in an error, a
      // name listed from an under store written by others) become U+FFFD.
      size_t n = utf8_sequence(s, i);
      if (n == 0) out += "\xEF\xBF\xBD";
      else out.append(s.substr(i, n));
      i += n == 0 ? 0 : n - 1;
      continue;
    }
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      case '\r': out += "&#13;"; break;
      case '\n': out += "&#10;"; break;
      case '\t': out += "&#9;"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) out += fmt::format("&#{};", static_cast<int>(c));
        else out += c;
    }
  }
  return out;
}

void XmlWriter::open(std::string_view name, bool ns) {
  out_ += '<';
  out_ += name;
  if (ns) out_ += " xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"";
  out_ += '>';
}

void XmlWriter::close(std::string_view name) {
  out_ += "</";
  out_ += name;
  out_ += '>';
}

void XmlWriter::elem(std::string_view name, std::string_view text) {
  open(name);
  out_ += xml_escape(text);
  close(name);
}

std::string iso8601(int64_t ms) {
  time_t t = static_cast<time_t>(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buf, static_cast<int>(ms % 1000));
}

std::string http_date(int64_t ms) {
  time_t t = static_cast<time_t>(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

int64_t parse_http_date(std::string_view s) {
  std::string str(s);
  struct tm tm {};
  for (const char* fmt : {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %d %H:%M:%S %Y",
                          "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S"}) {
    tm = {};
    const char* end = strptime(str.c_str(), fmt, &tm);
    if (end) return static_cast<int64_t>(timegm(&tm)) * 1000;
  }
  return -1;
}

namespace {

Status malformed(const std::string& why = "") {
  return s3_error("MalformedXML", why.empty() ? "" : "The XML you provided was not well-formed or did not validate against our published schema: " + why);
}

Result<pugi::xml_document*> load(pugi::xml_document& doc, std::string_view body) {
  if (body.empty()) return malformed("empty body");
  auto r = doc.load_buffer(body.data(), body.size(), pugi::parse_default | pugi::parse_ws_pcdata_single, pugi::encoding_utf8);
  if (!r) return malformed(r.description());
  return &doc;
}

std::string local_name(const char* n) {
  std::string s(n);
  auto c = s.find(':');
  return c == std::string::npos ? s : s.substr(c + 1);
}

pugi::xml_node child(pugi::xml_node n, const char* name) {
  for (auto c : n.children())
    if (local_name(c.name()) == name) return c;
  return {};
}

int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> form_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int a = hexval(s[i + 1]), b = hexval(s[i + 2]);
      if (a < 0 || b < 0) return std::nullopt;
      out += static_cast<char>(a * 16 + b);
      i += 2;
    } else if (s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

Status check_tags(const std::vector<std::pair<std::string, std::string>>& tags) {
  if (tags.size() > 10) return s3_error("InvalidTag", "Object tags cannot be greater than 10");
  std::set<std::string> seen;
  for (auto& [k, v] : tags) {
    if (k.empty() || k.size() > 128) return s3_error("InvalidTag", "The TagKey you have provided is invalid");
    if (v.size() > 256) return s3_error("InvalidTag", "The TagValue you have provided is too long");
    if (!valid_utf8(k) || !valid_utf8(v)) return s3_error("InvalidTag", "Tag keys and values must be UTF-8");
    if (!seen.insert(k).second) return s3_error("InvalidTag", "Cannot provide multiple Tags with the same key");
  }
  return ok_status();
}

}  // namespace

Result<DeleteRequest> parse_delete(std::string_view body) {
  pugi::xml_document doc;
  auto l = load(doc, body);
  if (!l.ok()) return l.status();
  auto root = doc.document_element();
  if (local_name(root.name()) != "Delete") return malformed("root element must be Delete");
  DeleteRequest req;
  for (auto c : root.children()) {
    std::string n = local_name(c.name());
    if (n == "Quiet") req.quiet = std::string(c.text().as_string()) == "true";
    else if (n == "Object") {
      auto k = child(c, "Key");
      if (!k) return malformed("Object without Key");
      req.keys.emplace_back(k.text().as_string());
    }
  }
  if (req.keys.empty()) return malformed("no objects");
  if (req.keys.size() > 1000) return malformed("more than 1000 objects");
  return req;
}

Result<std::vector<PartRef>> parse_complete_multipart(std::string_view body) {
  pugi::xml_document doc;
  auto l = load(doc, body);
  if (!l.ok()) return l.status();
  auto root = doc.document_element();
  if (local_name(root.name()) != "CompleteMultipartUpload") return malformed("root element must be CompleteMultipartUpload");
  std::vector<PartRef> parts;
  for (auto c : root.children()) {
    if (local_name(c.name()) != "Part") continue;
    auto num = child(c, "PartNumber");
    auto et = child(c, "ETag");
    if (!num || !et) return malformed("Part needs PartNumber and ETag");
    PartRef p;
    std::string ns = num.text().as_string();
    if (ns.empty() || ns.find_first_not_of("0123456789") != std::string::npos) return malformed("bad PartNumber");
    ns.erase(0, std::min(ns.find_first_not_of('0'), ns.size()));  // leading zeros
    // Beyond 10000 no part exists (InvalidPart); capped so that no number overflows.
    p.number = ns.empty() ? 0 : ns.size() > 5 ? 100000 : std::stoi(ns);
    p.etag = et.text().as_string();
    if (p.etag.size() >= 2 && p.etag.front() == '"' && p.etag.back() == '"') p.etag = p.etag.substr(1, p.etag.size() - 2);
    parts.push_back(p);
  }
  if (parts.empty()) return malformed("no parts");
  return parts;
}

Result<std::vector<std::pair<std::string, std::string>>> parse_tagging(std::string_view body) {
  pugi::xml_document doc;
  auto l = load(doc, body);
  if (!l.ok()) return l.status();
  auto root = doc.document_element();
  if (local_name(root.name()) != "Tagging") return malformed("root element must be Tagging");
  auto set = child(root, "TagSet");
  if (!set) return malformed("TagSet missing");
  std::vector<std::pair<std::string, std::string>> tags;
  for (auto t : set.children()) {
    if (local_name(t.name()) != "Tag") continue;
    auto k = child(t, "Key");
    auto v = child(t, "Value");
    if (!k) return malformed("Tag without Key");
    tags.emplace_back(k.text().as_string(), v ? v.text().as_string() : "");
  }
  RETURN_IF_ERROR(check_tags(tags));
  return tags;
}

Result<std::vector<std::pair<std::string, std::string>>> parse_tag_header(std::string_view h) {
  std::vector<std::pair<std::string, std::string>> tags;
  size_t pos = 0;
  while (pos < h.size()) {
    size_t amp = h.find('&', pos);
    if (amp == std::string_view::npos) amp = h.size();
    std::string_view kv = h.substr(pos, amp - pos);
    pos = amp + 1;
    if (kv.empty()) continue;
    size_t eq = kv.find('=');
    auto k = form_decode(kv.substr(0, eq));
    auto v = eq == std::string_view::npos ? std::optional<std::string>("") : form_decode(kv.substr(eq + 1));
    if (!k || !v) return s3_error("InvalidArgument", "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.");
    tags.emplace_back(*k, *v);
  }
  RETURN_IF_ERROR(check_tags(tags));
  return tags;
}

}  // namespace reservoir::s3
