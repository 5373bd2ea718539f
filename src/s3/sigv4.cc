#include "s3/sigv4.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>

#include "common/hash.h"

namespace reservoir::s3 {

namespace {

using std::chrono::sys_seconds;

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr std::string_view kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr int64_t kMaxPresignExpires = 604800;  // one week

Status malformed(std::string msg) {
  return Status(Code::invalid_argument, std::move(msg), "AuthorizationHeaderMalformed");
}
Status query_error(std::string msg) {
  return Status(Code::invalid_argument, std::move(msg), "AuthorizationQueryParametersError");
}
Status mismatch() {
  return Status(Code::unauthenticated,
                "The request signature we calculated does not match the signature you provided. "
                "Check your key and signing method.",
                "SignatureDoesNotMatch");
}

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool is_hex_sig(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
  return true;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

int to_int(std::string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

std::optional<sys_seconds> make_time(int y, int mo, int d, int h, int mi, int s) {
  using namespace std::chrono;
  year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || s > 60) return std::nullopt;
  return sys_seconds{sys_days{ymd}} + hours{h} + minutes{mi} + seconds{s};
}

// "20130524T000000Z"
std::optional<sys_seconds> parse_amz_date(std::string_view s) {
  if (s.size() != 16 || s[8] != 'T' || s[15] != 'Z') return std::nullopt;
  if (!all_digits(s.substr(0, 8)) || !all_digits(s.substr(9, 6))) return std::nullopt;
  return make_time(to_int(s.substr(0, 4)), to_int(s.substr(4, 2)), to_int(s.substr(6, 2)),
                   to_int(s.substr(9, 2)), to_int(s.substr(11, 2)), to_int(s.substr(13, 2)));
}

// RFC 1123: "Fri, 24 May 2013 00:00:00 GMT" (weekday optional).
std::optional<sys_seconds> parse_http_date(std::string_view s) {
  s = trim(s);
  if (auto comma = s.find(','); comma != std::string_view::npos) s = trim(s.substr(comma + 1));
  std::string buf(s);
  int d = 0, y = 0, h = 0, mi = 0, sec = 0;
  char mon[4] = {0};
  char zone[8] = {0};
  if (std::sscanf(buf.c_str(), "%2d %3s %4d %2d:%2d:%2d %7s", &d, mon, &y, &h, &mi, &sec, zone) != 7)
    return std::nullopt;
  if (std::strcmp(zone, "GMT") != 0 && std::strcmp(zone, "UTC") != 0) return std::nullopt;
  static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  int mo = 0;
  for (int i = 0; i < 12; ++i)
    if (std::strcmp(mon, kMonths[i]) == 0) mo = i + 1;
  if (mo == 0 || h < 0 || mi < 0 || sec < 0) return std::nullopt;
  return make_time(y, mo, d, h, mi, sec);
}

std::string format_amz_date(sys_seconds t) {
  using namespace std::chrono;
  auto days = floor<std::chrono::days>(t);
  year_month_day ymd{days};
  hh_mm_ss<seconds> hms{t - days};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d%02u%02uT%02d%02d%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

std::string canonical_uri(std::string_view raw_path) {
  if (raw_path.empty()) return "/";
  auto decoded = uri_decode(raw_path);
  // An undecodable path cannot have been signed by a conforming client; encoding
  // the raw bytes makes the signature simply not match.
  return uri_encode(decoded ? std::string_view(*decoded) : raw_path, false);
}

// Splits the raw query into percent-decoded (key, value) pairs.
std::vector<std::pair<std::string, std::string>> decode_query(std::string_view raw) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!raw.empty()) {
    size_t amp = raw.find('&');
    std::string_view part = raw.substr(0, amp);
    raw = amp == std::string_view::npos ? std::string_view() : raw.substr(amp + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    std::string_view k = part.substr(0, eq);
    std::string_view v = eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);
    auto dk = uri_decode(k);
    auto dv = uri_decode(v);
    out.emplace_back(dk ? *dk : std::string(k), dv ? *dv : std::string(v));
  }
  return out;
}

std::string canonical_query(std::string_view raw) {
  std::vector<std::pair<std::string, std::string>> enc;
  for (auto& [k, v] : decode_query(raw)) {
    if (k == "X-Amz-Signature") continue;
    enc.emplace_back(uri_encode(k, true), uri_encode(v, true));
  }
  std::sort(enc.begin(), enc.end());
  std::string out;
  for (const auto& [k, v] : enc) {
    if (!out.empty()) out += '&';
    out += k;
    out += '=';
    out += v;
  }
  return out;
}

// Trims and collapses internal runs of whitespace to one space.
std::string canonical_header_value(std::string_view v) {
  v = trim(v);
  std::string out;
  out.reserve(v.size());
  bool in_space = false;
  for (char c : v) {
    if (is_space(c)) {
      in_space = true;
      continue;
    }
    if (in_space) out += ' ';
    in_space = false;
    out += c;
  }
  return out;
}

bool sig_equal(std::string_view computed, std::string_view provided) {
  if (computed.size() != provided.size()) return false;
  std::string lower = to_lower(provided);
  return CRYPTO_memcmp(computed.data(), lower.data(), computed.size()) == 0;
}

struct Credential {
  std::string access_key, date, region, service;
  std::string scope() const { return date + "/" + region + "/" + service + "/aws4_request"; }
};

// "AK/20130524/us-east-1/s3/aws4_request"; the access key is everything before
// the last four components.
std::optional<Credential> parse_credential(std::string_view s) {
  std::string_view parts[4];
  for (int i = 3; i >= 0; --i) {
    size_t slash = s.rfind('/');
    if (slash == std::string_view::npos) return std::nullopt;
    parts[i] = s.substr(slash + 1);
    s = s.substr(0, slash);
  }
  if (s.empty() || parts[3] != "aws4_request" || parts[0].size() != 8 || !all_digits(parts[0]) ||
      parts[1].empty() || parts[2].empty())
    return std::nullopt;
  return Credential{std::string(s), std::string(parts[0]), std::string(parts[1]),
                    std::string(parts[2])};
}

std::optional<std::vector<std::string>> parse_signed_headers(std::string_view s) {
  std::vector<std::string> out;
  while (true) {
    size_t semi = s.find(';');
    std::string_view name = trim(s.substr(0, semi));
    if (name.empty()) return std::nullopt;
    out.push_back(to_lower(name));
    if (semi == std::string_view::npos) break;
    s = s.substr(semi + 1);
  }
  return out;
}

bool valid_payload_hash(std::string_view h) {
  static constexpr std::string_view kLiterals[] = {
      "UNSIGNED-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
      "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"};
  for (auto l : kLiterals)
    if (h == l) return true;
  if (h.size() != 64) return false;
  for (char c : h)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string hmac_hex(std::string_view key, std::string_view data) {
  return hex_encode(hmac_sha256_raw(key, data));
}

// Shared tail of both forms: key lookup, signature computation and comparison.
Result<AuthResult> check_signature(const http::Request& req, const SecretLookup& secrets,
                                   const Credential& cred, const std::string& amz_date,
                                   const std::vector<std::string>& signed_headers,
                                   std::string_view provided_sig, std::string payload_hash,
                                   bool presigned) {
  std::optional<std::string> secret = secrets ? secrets(cred.access_key) : std::nullopt;
  if (!secret)
    return Status(Code::unauthenticated,
                  "The AWS Access Key Id you provided does not exist in our records.",
                  "InvalidAccessKeyId");
  AuthResult r;
  r.presigned = presigned;
  r.access_key = cred.access_key;
  r.amz_date = amz_date;
  r.scope = cred.scope();
  r.signing_key = derive_signing_key(*secret, cred.date, cred.region, cred.service);
  std::string creq = canonical_request(req, signed_headers, payload_hash);
  std::string computed = hmac_hex(r.signing_key, string_to_sign(amz_date, r.scope, creq));
  if (!sig_equal(computed, provided_sig)) return mismatch();
  r.seed_signature = std::move(computed);
  r.payload_hash = std::move(payload_hash);
  return r;
}

Result<AuthResult> verify_header(const http::Request& req, std::string_view auth,
                                 const SecretLookup& secrets,
                                 std::chrono::system_clock::time_point now) {
  auth = trim(auth);
  if (auth.substr(0, kAlgorithm.size()) != kAlgorithm ||
      (auth.size() > kAlgorithm.size() && !is_space(auth[kAlgorithm.size()]) &&
       auth[kAlgorithm.size()] != ','))
    return Status(Code::invalid_argument,
                  "The authorization mechanism you have provided is not supported. Please use "
                  "AWS4-HMAC-SHA256.",
                  "InvalidRequest");
  std::string_view rest = auth.substr(kAlgorithm.size());

  // Components separated by commas and/or whitespace, in any order; whitespace
  // around '=' is tolerated ("Credential = AK/..." as some clients send).
  std::string norm;
  norm.reserve(rest.size());
  for (size_t i = 0; i < rest.size(); ++i) {
    if (is_space(rest[i])) {
      size_t j = i;
      while (j < rest.size() && is_space(rest[j])) ++j;
      bool before_eq = j < rest.size() && rest[j] == '=';
      bool after_eq = !norm.empty() && norm.back() == '=';
      if (!before_eq && !after_eq) norm += ' ';
      i = j - 1;
      continue;
    }
    norm += rest[i];
  }
  std::optional<std::string> credential, signed_headers, signature;
  std::string_view sv = norm;
  while (true) {
    while (!sv.empty() && (sv.front() == ' ' || sv.front() == ',')) sv.remove_prefix(1);
    if (sv.empty()) break;
    size_t end = sv.find_first_of(" ,");
    std::string_view tok = sv.substr(0, end);
    sv = end == std::string_view::npos ? std::string_view() : sv.substr(end);
    size_t eq = tok.find('=');
    if (eq == std::string_view::npos)
      return malformed("The authorization header is malformed; the authorization component \"" +
                       std::string(tok) + "\" is malformed.");
    std::string_view key = tok.substr(0, eq);
    std::optional<std::string>* slot = key == "Credential"      ? &credential
                                       : key == "SignedHeaders" ? &signed_headers
                                       : key == "Signature"     ? &signature
                                                                : nullptr;
    if (!slot) continue;  // unknown components are ignored
    if (*slot) return malformed("duplicate " + std::string(key) + " in Authorization header");
    *slot = std::string(tok.substr(eq + 1));
  }
  if (!credential || !signed_headers || !signature)
    return malformed(
        "The authorization header is malformed; it must contain Credential, SignedHeaders and "
        "Signature.");

  auto cred = parse_credential(*credential);
  if (!cred)
    return malformed("The authorization header is malformed; the Credential is mal-formed; "
                     "expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".");
  auto headers = parse_signed_headers(*signed_headers);
  if (!headers) return malformed("The authorization header is malformed; bad SignedHeaders.");
  if (std::find(headers->begin(), headers->end(), "host") == headers->end())
    return malformed("The authorization header is malformed; SignedHeaders must include host.");
  if (!is_hex_sig(*signature))
    return malformed("The authorization header is malformed; bad Signature.");

  // Date: x-amz-date, else Date (RFC 1123).
  std::string amz_date;
  std::optional<sys_seconds> t;
  if (const std::string* xd = req.header("x-amz-date")) {
    amz_date = std::string(trim(*xd));
    t = parse_amz_date(amz_date);
    if (!t)
      return Status(Code::permission_denied, "Invalid x-amz-date: " + amz_date, "AccessDenied");
  } else if (const std::string* d = req.header("date")) {
    t = parse_http_date(*d);
    if (!t) return Status(Code::permission_denied, "Invalid Date header", "AccessDenied");
    amz_date = format_amz_date(*t);
  } else {
    return Status(Code::permission_denied,
                  "AWS authentication requires a valid Date or x-amz-date header", "AccessDenied");
  }
  if (amz_date.substr(0, 8) != cred->date)
    return malformed("The authorization header is malformed; Invalid credential date. Date is not "
                     "the same as X-Amz-Date.");
  auto skew = std::chrono::duration_cast<std::chrono::seconds>(now - *t);
  if (skew > kMaxClockSkew || skew < -kMaxClockSkew)
    return Status(Code::unauthenticated,
                  "The difference between the request time and the current time is too large.",
                  "RequestTimeTooSkewed");

  const std::string* ph = req.header("x-amz-content-sha256");
  if (!ph)
    return Status(Code::invalid_argument,
                  "Missing required header for this request: x-amz-content-sha256",
                  "InvalidRequest");
  std::string payload_hash(trim(*ph));
  if (!valid_payload_hash(payload_hash))
    return Status(Code::invalid_argument,
                  "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-*, or a valid sha256 "
                  "value.",
                  "InvalidArgument");
  // The payload mode decides how the body is framed and checked, so it must be signed.
  if (std::find(headers->begin(), headers->end(), "x-amz-content-sha256") == headers->end())
    return malformed(
        "The authorization header is malformed; x-amz-content-sha256 must be a signed header.");

  return check_signature(req, secrets, *cred, amz_date, *headers, *signature,
                         std::move(payload_hash), false);
}

Result<AuthResult> verify_presigned(const http::Request& req,
                                    const std::vector<std::pair<std::string, std::string>>& q,
                                    const SecretLookup& secrets,
                                    std::chrono::system_clock::time_point now) {
  auto get = [&](std::string_view name) -> const std::string* {
    for (const auto& [k, v] : q)
      if (k == name) return &v;
    return nullptr;
  };
  const std::string* alg = get("X-Amz-Algorithm");
  const std::string* credential = get("X-Amz-Credential");
  const std::string* date = get("X-Amz-Date");
  const std::string* expires = get("X-Amz-Expires");
  const std::string* signed_headers = get("X-Amz-SignedHeaders");
  const std::string* signature = get("X-Amz-Signature");
  if (!alg || !credential || !date || !expires || !signed_headers || !signature)
    return query_error(
        "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
        "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.");
  if (*alg != kAlgorithm)
    return query_error("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"");
  auto cred = parse_credential(*credential);
  if (!cred)
    return query_error("Error parsing the X-Amz-Credential parameter; expecting "
                       "\"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".");
  auto t = parse_amz_date(*date);
  if (!t) return query_error("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"");
  if (date->substr(0, 8) != cred->date)
    return query_error("Invalid credential date. Date is not the same as X-Amz-Date.");
  if (!all_digits(*expires) || expires->size() > 7)
    return query_error("X-Amz-Expires should be a number");
  int64_t exp = std::stoll(*expires);
  if (exp > kMaxPresignExpires)
    return query_error("X-Amz-Expires must be less than a week (in seconds) that is; 604800");
  auto headers = parse_signed_headers(*signed_headers);
  if (!headers) return query_error("Error parsing the X-Amz-SignedHeaders parameter");
  if (std::find(headers->begin(), headers->end(), "host") == headers->end())
    return query_error("X-Amz-SignedHeaders must include host");
  if (!is_hex_sig(*signature)) return query_error("Invalid X-Amz-Signature");

  if (now > *t + std::chrono::seconds(exp))
    return Status(Code::permission_denied, "Request has expired", "AccessDenied");
  if (*t - now > kMaxClockSkew)
    return Status(Code::permission_denied, "Request is not valid yet", "AccessDenied");

  std::string payload_hash = "UNSIGNED-PAYLOAD";
  if (const std::string* ph = get("X-Amz-Content-Sha256")) {
    if (!valid_payload_hash(*ph))
      return Status(Code::invalid_argument,
                    "X-Amz-Content-Sha256 must be UNSIGNED-PAYLOAD or a valid sha256 value.",
                    "InvalidArgument");
    payload_hash = *ph;
  }
  return check_signature(req, secrets, *cred, *date, *headers, *signature, std::move(payload_hash),
                         true);
}

}  // namespace

std::string uri_encode(std::string_view s, bool encode_slash) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3 / 2);
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~' || (c == '/' && !encode_slash)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::optional<std::string> uri_decode(std::string_view s) {
  auto hexval = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::string canonical_request(const http::Request& req,
                              const std::vector<std::string>& signed_headers,
                              std::string_view payload_hash) {
  std::string out;
  out.reserve(512);
  out += req.method;
  out += '\n';
  out += canonical_uri(req.raw_path);
  out += '\n';
  out += canonical_query(req.raw_query);
  out += '\n';
  for (const auto& name : signed_headers) {
    out += name;
    out += ':';
    bool first = true;
    for (const auto& [k, v] : req.headers) {
      if (k != name) continue;
      if (!first) out += ',';
      first = false;
      out += canonical_header_value(v);
    }
    out += '\n';
  }
  out += '\n';
  for (size_t i = 0; i < signed_headers.size(); ++i) {
    if (i) out += ';';
    out += signed_headers[i];
  }
  out += '\n';
  out += payload_hash;
  return out;
}

std::string string_to_sign(std::string_view amz_date, std::string_view scope,
                           std::string_view canonical_request) {
  std::string out;
  out.reserve(160);
  out += kAlgorithm;
  out += '\n';
  out += amz_date;
  out += '\n';
  out += scope;
  out += '\n';
  out += sha256_hex(canonical_request);
  return out;
}

std::string derive_signing_key(std::string_view secret, std::string_view date,
                               std::string_view region, std::string_view service) {
  // The key changes once a day per credential: each thread keeps the last
  // few it derived (four HMACs saved per request).
  struct Entry {
    std::string secret, date, region, service, key;
  };
  thread_local std::array<Entry, 4> cache;
  thread_local size_t next = 0;
  for (auto& e : cache)
    if (!e.key.empty() && e.date == date && e.secret == secret && e.region == region && e.service == service)
      return e.key;
  std::string k = hmac_sha256_raw("AWS4" + std::string(secret), date);
  k = hmac_sha256_raw(k, region);
  k = hmac_sha256_raw(k, service);
  k = hmac_sha256_raw(k, "aws4_request");
  cache[next] = {std::string(secret), std::string(date), std::string(region), std::string(service), k};
  next = (next + 1) % cache.size();
  return k;
}

std::string chunk_signature_for_hash(std::string_view signing_key, std::string_view amz_date,
                                     std::string_view scope, std::string_view prev_signature,
                                     std::string_view chunk_sha256_hex) {
  std::string sts;
  sts.reserve(256);
  sts += "AWS4-HMAC-SHA256-PAYLOAD\n";
  sts += amz_date;
  sts += '\n';
  sts += scope;
  sts += '\n';
  sts += prev_signature;
  sts += '\n';
  sts += kEmptySha256;
  sts += '\n';
  sts += chunk_sha256_hex;
  return hmac_hex(signing_key, sts);
}

std::string chunk_signature(std::string_view signing_key, std::string_view amz_date,
                            std::string_view scope, std::string_view prev_signature,
                            std::string_view chunk_data) {
  return chunk_signature_for_hash(signing_key, amz_date, scope, prev_signature,
                                  sha256_hex(chunk_data));
}

std::string trailer_signature(std::string_view signing_key, std::string_view amz_date,
                              std::string_view scope, std::string_view prev_signature,
                              std::string_view trailer_block) {
  std::string sts;
  sts.reserve(256);
  sts += "AWS4-HMAC-SHA256-TRAILER\n";
  sts += amz_date;
  sts += '\n';
  sts += scope;
  sts += '\n';
  sts += prev_signature;
  sts += '\n';
  sts += sha256_hex(trailer_block);
  return hmac_hex(signing_key, sts);
}

Result<AuthResult> verify_sigv4(const http::Request& req, const SecretLookup& secrets,
                                std::chrono::system_clock::time_point now) {
  const std::string* auth = req.header("authorization");
  auto q = decode_query(req.raw_query);
  bool query_auth = false;
  for (const auto& [k, v] : q)
    if (k == "X-Amz-Signature" || k == "X-Amz-Algorithm" || k == "X-Amz-Credential") query_auth = true;
  if (auth && query_auth)
    return Status(Code::invalid_argument,
                  "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                  "Signature query string parameter or the Authorization header should be "
                  "specified",
                  "InvalidArgument");
  if (auth) return verify_header(req, *auth, secrets, now);
  if (query_auth) return verify_presigned(req, q, secrets, now);
  AuthResult anon;
  anon.anonymous = true;
  anon.payload_hash = req.header_or("x-amz-content-sha256", "UNSIGNED-PAYLOAD");
  return anon;
}

void sign_request(http::Request& req, std::string_view access_key, std::string_view secret,
                  std::string_view region, std::string_view payload_hash,
                  std::chrono::system_clock::time_point now) {
  if (req.raw_path.empty() && !req.target.empty()) {
    std::string_view t = req.target;
    size_t qm = t.find('?');
    req.raw_path = std::string(t.substr(0, qm));
    req.raw_query = qm == std::string_view::npos ? "" : std::string(t.substr(qm + 1));
  }
  for (auto& h : req.headers) h.first = to_lower(h.first);
  std::erase_if(req.headers, [](const auto& h) {
    return h.first == "authorization" || h.first == "x-amz-date" ||
           h.first == "x-amz-content-sha256";
  });
  std::string amz_date =
      format_amz_date(std::chrono::floor<std::chrono::seconds>(now));
  req.headers.emplace_back("x-amz-date", amz_date);
  req.headers.emplace_back("x-amz-content-sha256", std::string(payload_hash));

  // Sign every header except the hop-by-hop ones and those proxies rewrite.
  static constexpr std::string_view kUnsigned[] = {
      "authorization", "user-agent", "expect", "connection", "keep-alive", "proxy-authorization",
      "te", "trailer", "transfer-encoding", "upgrade", "x-amzn-trace-id"};
  std::vector<std::string> names;
  for (const auto& [k, v] : req.headers) {
    std::string n = to_lower(k);
    if (std::find(std::begin(kUnsigned), std::end(kUnsigned), n) != std::end(kUnsigned)) continue;
    names.push_back(std::move(n));
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());

  std::string date = amz_date.substr(0, 8);
  std::string scope = date + "/" + std::string(region) + "/s3/aws4_request";
  std::string key = derive_signing_key(secret, date, region, "s3");
  std::string sig =
      hmac_hex(key, string_to_sign(amz_date, scope, canonical_request(req, names, payload_hash)));
  std::string signed_list;
  for (const auto& n : names) {
    if (!signed_list.empty()) signed_list += ';';
    signed_list += n;
  }
  req.headers.emplace_back("authorization", std::string(kAlgorithm) + " Credential=" +
                                                std::string(access_key) + "/" + scope +
                                                ",SignedHeaders=" + signed_list +
                                                ",Signature=" + sig);
}

}  // namespace reservoir::s3
