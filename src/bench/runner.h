// The load generator of `reservoir bench`: runs one step (one operation at
// one concurrency against one endpoint) on its own io_context threads with
// one kept-alive connection per concurrent worker, and measures it.
// Beast and Asio stay inside runner.cc.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/options.h"
#include "bench/stats.h"
#include "common/status.h"

namespace reservoir::bench {

// splitmix64: the mixing function that derives sizes and data offsets.
inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The random (incompressible) bytes every request body is sliced from, and
// the prepared objects that get/stat/list read. Object bodies are the bytes
// of `data` starting at an offset, wrapping around, so any object of any size
// can be written and verified without keeping it.
struct Dataset {
  std::vector<char> data;
  std::string prefix;    // key prefix of the run, ends with '/'
  SizeDist size;
  uint64_t objects = 0;  // prepared objects: prefix + "obj/" + i

  // Fills `data` with size max(size.max, 1MiB) capped at 64MiB, plus 1MiB.
  void generate(const SizeDist& sizes, uint64_t seed);
  std::string object_key(uint64_t i) const { return prefix + "obj/" + std::to_string(i); }
  uint64_t object_size(uint64_t i) const { return size.pick(mix64(2 * i + 1)); }
  uint64_t object_offset(uint64_t i) const { return mix64(2 * i + 2) % data.size(); }
  // True if p[0..n) equals the bytes at position `pos` of the body that starts at `offset`.
  bool matches(uint64_t offset, uint64_t pos, const char* p, size_t n) const;
};

// Creates the endpoint's bucket unless it exists (or the endpoint is anonymous).
Status ensure_bucket(const Endpoint& ep);

// PUTs objects [0, ds.objects) of the dataset, with `concurrency` workers.
Status prepare_objects(const BenchOptions& opt, const Endpoint& ep, const Dataset& ds, int concurrency);

// Runs one step and returns what it measured.
Result<StepResult> run_step(const BenchOptions& opt, const Endpoint& ep, const Dataset& ds, Op op,
                            int concurrency);

}  // namespace reservoir::bench
