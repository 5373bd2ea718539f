#include "bench/stats.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

namespace reservoir::bench {

uint64_t percentile(const std::vector<uint64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  // The epsilon keeps 99.9% of 1000 at rank 999 despite binary floating point.
  double rank = std::ceil(p / 100.0 * static_cast<double>(sorted.size()) - 1e-9);
  size_t idx = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return sorted[std::min(idx, sorted.size() - 1)];
}

LatencySummary summarize(std::vector<uint64_t>& ns) {
  LatencySummary s;
  if (ns.empty()) return s;
  std::sort(ns.begin(), ns.end());
  auto ms = [](uint64_t v) { return static_cast<double>(v) / 1e6; };
  s.p50_ms = ms(percentile(ns, 50));
  s.p90_ms = ms(percentile(ns, 90));
  s.p99_ms = ms(percentile(ns, 99));
  s.p999_ms = ms(percentile(ns, 99.9));
  s.max_ms = ms(ns.back());
  s.min_ms = ms(ns.front());
  long double sum = 0;
  for (uint64_t v : ns) sum += v;
  s.mean_ms = static_cast<double>(sum / ns.size()) / 1e6;
  return s;
}

void OpStats::merge(const OpStats& o) {
  ops += o.ops;
  bytes += o.bytes;
  errors += o.errors;
  verify_failures += o.verify_failures;
  for (const auto& [k, v] : o.errors_by_code) errors_by_code[k] += v;
  latency_ns.insert(latency_ns.end(), o.latency_ns.begin(), o.latency_ns.end());
}

OpResult finish(const std::string& op, OpStats& s, double seconds) {
  OpResult r;
  r.op = op;
  r.ops = s.ops;
  r.bytes = s.bytes;
  r.errors = s.errors;
  r.verify_failures = s.verify_failures;
  r.errors_by_code = s.errors_by_code;
  if (seconds > 0) {
    r.ops_per_s = static_cast<double>(s.ops) / seconds;
    r.mb_per_s = static_cast<double>(s.bytes) / seconds / 1e6;
  }
  r.latency = summarize(s.latency_ns);
  return r;
}

nlohmann::json to_json(const OpResult& r) {
  return nlohmann::json{
      {"op", r.op},
      {"ops", r.ops},
      {"bytes", r.bytes},
      {"errors", r.errors},
      {"verify_failures", r.verify_failures},
      {"errors_by_code", r.errors_by_code},
      {"ops_per_s", r.ops_per_s},
      {"mb_per_s", r.mb_per_s},
      {"latency_ms",
       {{"p50", r.latency.p50_ms}, {"p90", r.latency.p90_ms}, {"p99", r.latency.p99_ms},
        {"p999", r.latency.p999_ms}, {"max", r.latency.max_ms}, {"min", r.latency.min_ms},
        {"mean", r.latency.mean_ms}}},
  };
}

nlohmann::json to_json(const StepResult& r) {
  nlohmann::json j = to_json(r.primary);
  j["endpoint"] = r.endpoint;
  j["op"] = r.op;
  j["concurrency"] = r.concurrency;
  j["size_min"] = r.size_min;
  j["size_max"] = r.size_max;
  j["seconds"] = r.seconds;
  j["by_op"] = nlohmann::json::object();
  for (const auto& o : r.by_op) j["by_op"][o.op] = to_json(o);
  return j;
}

}  // namespace reservoir::bench
