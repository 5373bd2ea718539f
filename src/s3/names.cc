#include "s3/names.h"

#include <cctype>

#include "s3/errors.h"

namespace reservoir::s3 {

Status validate_bucket_name(const std::string& n) {
  auto bad = [&](const char* why) { return s3_error("InvalidBucketName", std::string("The specified bucket is not valid: ") + why); };
  if (n.size() < 3 || n.size() > 63) return bad("length must be 3 to 63");
  for (char c : n)
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '-'))
      return bad("only lower-case letters, digits, '.' and '-' are allowed");
  auto alnum = [](char c) { return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)); };
  if (!alnum(n.front()) || !alnum(n.back())) return bad("must start and end with a letter or digit");
  if (n.find("..") != std::string::npos || n.find(".-") != std::string::npos || n.find("-.") != std::string::npos)
    return bad("adjacent periods or dashes next to periods");
  int dots = 0;
  bool all_digits_dots = true;
  for (char c : n) {
    if (c == '.') dots++;
    else if (!std::isdigit(static_cast<unsigned char>(c))) all_digits_dots = false;
  }
  if (dots == 3 && all_digits_dots) return bad("must not be formatted as an IP address");
  if (n.rfind("xn--", 0) == 0 || n.rfind("sthree-", 0) == 0) return bad("reserved prefix");
  return ok_status();
}

// Well-formed UTF-8 as RFC 3629 defines it (Unicode's table 3-7): no
// overlong forms, no surrogates (ED A0-BF), nothing past U+10FFFF. The same
// rule as the JSON writer's, so text accepted here can always be written as
// JSON (a file:// sidecar, an admin answer).
size_t utf8_sequence(std::string_view s, size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  size_t len = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
  if (c >= 0xC2 && c <= 0xDF) len = 2;
  else if (c == 0xE0) len = 3, lo = 0xA0;
  else if (c == 0xED) len = 3, hi = 0x9F;
  else if (c >= 0xE1 && c <= 0xEF) len = 3;
  else if (c == 0xF0) len = 4, lo = 0x90;
  else if (c == 0xF4) len = 4, hi = 0x8F;
  else if (c >= 0xF1 && c <= 0xF3) len = 4;
  else return 0;
  if (i + len > s.size()) return 0;
  auto second = static_cast<unsigned char>(s[i + 1]);
  if (second < lo || second > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    auto b = static_cast<unsigned char>(s[i + k]);
    if (b < 0x80 || b > 0xBF) return 0;
  }
  return len;
}

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_sequence(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

Status validate_key(const std::string& key) {
  if (key.empty()) return s3_error("InvalidArgument", "The object key must not be empty");
  if (key.size() > 1024) return s3_error("KeyTooLongError", "Your key is too long");
  if (key.find('\0') != std::string::npos) return s3_error("InvalidArgument", "The object key must not contain NUL");
  if (!valid_utf8(key)) return s3_error("InvalidArgument", "The object key must be UTF-8");
  return ok_status();
}

}  // namespace reservoir::s3
