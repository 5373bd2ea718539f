// Per-operation measurements of a bench step: every latency sample (sorted
// for exact percentiles), bytes moved, and errors by HTTP status and S3 code.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace reservoir::bench {

// The p-th percentile (0 < p <= 100) of sorted samples by nearest rank: the
// smallest sample with at least p% of the samples at or below it. 0 when empty.
uint64_t percentile(const std::vector<uint64_t>& sorted, double p);

struct LatencySummary {
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0, mean_ms = 0, min_ms = 0;
};
// Sorts `ns` (nanoseconds) in place and summarises it.
LatencySummary summarize(std::vector<uint64_t>& ns);

// What one worker (then the whole step) measured for one operation type.
// Not thread-safe: each worker owns its own and they are merged at the end.
struct OpStats {
  uint64_t ops = 0;       // completed, successful or not
  uint64_t bytes = 0;     // body bytes sent (PUT) or received (GET)
  uint64_t errors = 0;
  uint64_t verify_failures = 0;  // successful reads whose body was not what was written
  std::map<std::string, uint64_t> errors_by_code;  // "503 SlowDown", "net: Connection reset by peer", "verify"
  std::vector<uint64_t> latency_ns;                 // successful operations only

  void record_ok(uint64_t ns, uint64_t nbytes) {
    ++ops;
    bytes += nbytes;
    latency_ns.push_back(ns);
  }
  void record_error(const std::string& code) {
    ++ops;
    ++errors;
    ++errors_by_code[code];
  }
  void merge(const OpStats& o);
};

// The result of one operation type in one step.
struct OpResult {
  std::string op;
  uint64_t ops = 0, bytes = 0, errors = 0, verify_failures = 0;
  double ops_per_s = 0, mb_per_s = 0;  // MB = 10^6 bytes
  LatencySummary latency;
  std::map<std::string, uint64_t> errors_by_code;
};
OpResult finish(const std::string& op, OpStats& s, double seconds);

// One step: one operation at one concurrency on one endpoint. `primary` is the
// operation the step is named after; `by_op` has every type it issued (a raw
// step has put and get).
struct StepResult {
  std::string endpoint;  // label
  std::string op;
  int concurrency = 0;
  uint64_t size_min = 0, size_max = 0;
  double seconds = 0;
  OpResult primary;
  std::vector<OpResult> by_op;
};

nlohmann::json to_json(const OpResult& r);
nlohmann::json to_json(const StepResult& r);

}  // namespace reservoir::bench
