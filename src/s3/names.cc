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

bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + static_cast<size_t>(len) > s.size()) return false;
    for (int k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + static_cast<size_t>(k)]) >> 6) != 2) return false;
    i += static_cast<size_t>(len);
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
