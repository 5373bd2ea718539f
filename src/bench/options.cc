#include "bench/options.h"

#include <charconv>
#include <cstdlib>

#include "common/units.h"

namespace reservoir::bench {
namespace {

constexpr std::string_view kNames[kOpCount] = {"put",  "get",    "raw",       "stat",
                                               "list", "delete", "multipart", "mixed"};

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) break;
    start = at + 1;
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string_view op_name(Op op) { return kNames[static_cast<int>(op)]; }

std::optional<Op> op_from_name(std::string_view name) {
  if (name == "del") return Op::del;
  if (name == "head") return Op::stat;
  for (int i = 0; i < kOpCount; ++i)
    if (kNames[i] == name) return static_cast<Op>(i);
  return std::nullopt;
}

Result<std::vector<Op>> parse_ops(std::string_view s) {
  std::vector<Op> out;
  for (auto part : split(s, ',')) {
    part = trim(part);
    auto op = op_from_name(part);
    if (!op) return invalid_argument("unknown operation '" + std::string(part) +
                                     "' (put, get, raw, stat, list, delete, multipart, mixed)");
    out.push_back(*op);
  }
  return out;
}

Result<SizeDist> parse_size_dist(std::string_view s) {
  s = trim(s);
  if (s.empty()) return invalid_argument("empty object size");
  size_t dash = s.find('-', 1);
  if (dash == std::string_view::npos) {
    auto v = parse_size(s);
    if (!v.ok()) return v.status();
    return SizeDist{*v, *v};
  }
  auto lo = parse_size(trim(s.substr(0, dash)));
  auto hi = parse_size(trim(s.substr(dash + 1)));
  if (!lo.ok()) return lo.status();
  if (!hi.ok()) return hi.status();
  if (*lo > *hi) return invalid_argument("object size range '" + std::string(s) + "' is reversed");
  return SizeDist{*lo, *hi};
}

Result<std::vector<int>> parse_int_list(std::string_view s) {
  std::vector<int> out;
  for (auto part : split(s, ',')) {
    part = trim(part);
    int v = 0;
    auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
    if (ec != std::errc() || p != part.data() + part.size() || v <= 0)
      return invalid_argument("'" + std::string(part) + "' is not a positive integer");
    out.push_back(v);
  }
  return out;
}

Op Mix::pick(double u) const {
  double acc = 0;
  Op last = Op::put;
  for (int i = 0; i < kOpCount; ++i) {
    if (weight[i] <= 0) continue;
    last = static_cast<Op>(i);
    acc += weight[i];
    if (u < acc) return last;
  }
  return last;
}

Result<Mix> parse_mix(std::string_view s) {
  Mix m;
  double total = 0;
  for (auto part : split(s, ',')) {
    part = trim(part);
    size_t eq = part.find('=');
    if (eq == std::string_view::npos) return invalid_argument("mix entry '" + std::string(part) + "' is not op=weight");
    auto op = op_from_name(trim(part.substr(0, eq)));
    if (!op || !(*op == Op::put || *op == Op::get || *op == Op::stat || *op == Op::del))
      return invalid_argument("mix operation '" + std::string(part.substr(0, eq)) + "' is not put, get, stat or delete");
    std::string num(trim(part.substr(eq + 1)));
    char* end = nullptr;
    double w = std::strtod(num.c_str(), &end);
    if (num.empty() || *end != '\0' || w < 0) return invalid_argument("mix weight '" + num + "' is not a number >= 0");
    m.weight[static_cast<int>(*op)] += w;
    total += w;
  }
  if (total <= 0) return invalid_argument("mix weights sum to zero");
  for (auto& w : m.weight) w /= total;
  return m;
}

Status parse_endpoint_url(Endpoint& e) {
  std::string_view u = e.url;
  if (u.starts_with("https://")) return invalid_argument("https endpoints are not supported by bench: " + e.url);
  if (u.starts_with("http://")) u.remove_prefix(7);
  while (u.ends_with('/')) u.remove_suffix(1);
  if (u.find('/') != std::string_view::npos) return invalid_argument("endpoint has a path: " + e.url);
  size_t colon = u.rfind(':');
  e.port = 80;
  if (colon != std::string_view::npos) {
    int p = 0;
    auto [ptr, ec] = std::from_chars(u.data() + colon + 1, u.data() + u.size(), p);
    if (ec != std::errc() || ptr != u.data() + u.size() || p <= 0 || p > 65535)
      return invalid_argument("bad port in endpoint " + e.url);
    e.port = static_cast<uint16_t>(p);
    u = u.substr(0, colon);
  }
  if (u.empty()) return invalid_argument("no host in endpoint " + e.url);
  e.host = std::string(u);
  if (e.label.empty()) e.label = e.url;
  return ok_status();
}

}  // namespace reservoir::bench
