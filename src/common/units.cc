#include "common/units.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <optional>

#include <fmt/format.h>

namespace reservoir {

namespace {
bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}
// Digits with at most one '.', all of `s` (not "1.2.3" or ".").
std::optional<double> whole_number(std::string_view s) {
  if (std::count(s.begin(), s.end(), '.') > 1 || s == ".") return std::nullopt;
  std::string text(s);
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}
}  // namespace

Result<uint64_t> parse_size(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) return invalid_argument(fmt::format("size '{}' does not start with a number", s));
  auto num_r = whole_number(s.substr(0, i));
  if (!num_r) return invalid_argument(fmt::format("size '{}' is not a number", s));
  double num = *num_r;
  std::string_view unit = s.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  struct U { const char* name; double mult; };
  static const U kUnits[] = {
      {"", 1}, {"b", 1}, {"k", 1e3}, {"kb", 1e3}, {"m", 1e6}, {"mb", 1e6}, {"g", 1e9}, {"gb", 1e9},
      {"t", 1e12}, {"tb", 1e12}, {"kib", 1024.0}, {"mib", 1048576.0}, {"gib", 1073741824.0},
      {"tib", 1099511627776.0}};
  for (const auto& u : kUnits)
    if (iequals(unit, u.name)) {
      double bytes = num * u.mult;
      if (bytes >= 9.2e18) return invalid_argument(fmt::format("size '{}' is too large", s));
      return static_cast<uint64_t>(std::llround(bytes));
    }
  return invalid_argument(fmt::format("size '{}' has an unknown unit (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)", s));
}

Result<std::chrono::milliseconds> parse_duration(std::string_view s) {
  if (s.empty()) return invalid_argument("empty duration");
  double total_ms = 0;
  size_t i = 0;
  while (i < s.size()) {
    size_t start = i;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    if (start == i) return invalid_argument(fmt::format("duration '{}' is malformed", s));
    auto num_r = whole_number(s.substr(start, i - start));
    if (!num_r) return invalid_argument(fmt::format("duration '{}' is malformed", s));
    double num = *num_r;
    size_t ustart = i;
    while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
    std::string_view unit = s.substr(ustart, i - ustart);
    double mult;
    if (unit.empty() || unit == "s") mult = 1000;
    else if (unit == "ms") mult = 1;
    else if (unit == "m") mult = 60'000;
    else if (unit == "h") mult = 3'600'000;
    else if (unit == "d") mult = 86'400'000;
    else return invalid_argument(fmt::format("duration '{}' has an unknown unit (use ms, s, m, h, d)", s));
    total_ms += num * mult;
  }
  if (total_ms > 3.2e12) return invalid_argument(fmt::format("duration '{}' is over 100 years", s));
  return std::chrono::milliseconds(static_cast<int64_t>(total_ms));
}

std::string format_size(uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{}B", b) : fmt::format("{:.1f}{}", v, units[u]);
}

}  // namespace reservoir
