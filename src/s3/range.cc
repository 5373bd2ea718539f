#include "s3/range.h"

#include <cctype>
#include <string>

#include "s3/errors.h"

namespace reservoir::s3 {

namespace {
// Digits; a number too large for 64 bits saturates (a last byte past any
// object's end is clamped to it, as RFC 7233 and S3 do).
bool parse_u64(std::string_view s, uint64_t& out) {
  if (s.empty()) return false;
  out = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    out = out > (UINT64_MAX - d) / 10 ? UINT64_MAX : out * 10 + d;
  }
  return true;
}
}  // namespace

Result<std::optional<ByteRange>> parse_range(std::string_view h, uint64_t size) {
  using R = std::optional<ByteRange>;
  while (!h.empty() && h.front() == ' ') h.remove_prefix(1);
  while (!h.empty() && h.back() == ' ') h.remove_suffix(1);
  if (h.rfind("bytes=", 0) != 0) return R();
  std::string_view spec = h.substr(6);
  if (spec.find(',') != std::string_view::npos) return R();
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return R();
  std::string_view a = spec.substr(0, dash), b = spec.substr(dash + 1);
  ByteRange r;
  if (a.empty()) {
    uint64_t suffix;
    if (!parse_u64(b, suffix)) return R();
    if (suffix == 0 || size == 0) return s3_error("InvalidRange");
    r.first = suffix >= size ? 0 : size - suffix;
    r.last = size - 1;
    return R(r);
  }
  uint64_t first;
  if (!parse_u64(a, first)) return R();
  uint64_t last = UINT64_MAX;
  if (!b.empty() && !parse_u64(b, last)) return R();
  if (last < first) return R();  // syntactically invalid: ignored, as S3 does
  if (first >= size) return s3_error("InvalidRange");
  r.first = first;
  r.last = last >= size ? size - 1 : last;
  return R(r);
}

}  // namespace reservoir::s3
