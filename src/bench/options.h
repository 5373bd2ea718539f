// What `reservoir bench` runs: the operations, object sizes, concurrency
// sweep, duration and endpoints, plus the parsers of their command-line forms.
// No network code here, so the parsers are unit-tested alone.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace reservoir::bench {

// The operations a step can run. `raw` is a PUT followed by a GET of the same
// key on the same connection (read-after-write); `mixed` draws each operation
// from a weighted mix of put/get/stat/delete.
enum class Op { put, get, raw, stat, list, del, multipart, mixed };
inline constexpr int kOpCount = 8;

std::string_view op_name(Op op);
std::optional<Op> op_from_name(std::string_view name);
// "put,get,raw" -> {put, get, raw}.
Result<std::vector<Op>> parse_ops(std::string_view s);

// Object sizes: fixed ("10KiB") or uniform between two sizes ("4KiB-1MiB").
struct SizeDist {
  uint64_t min = 0;
  uint64_t max = 0;
  bool fixed() const { return min == max; }
  // Picks a size from a uniform random 64-bit value.
  uint64_t pick(uint64_t random) const { return fixed() ? min : min + random % (max - min + 1); }
};
Result<SizeDist> parse_size_dist(std::string_view s);

// "1,4,16" -> {1, 4, 16}; every value > 0.
Result<std::vector<int>> parse_int_list(std::string_view s);

// Weights of put/get/stat/delete in a mixed step, e.g. "put=30,get=60,stat=10".
struct Mix {
  std::array<double, kOpCount> weight{};  // indexed by Op, sums to 1
  // The op for a uniform value in [0, 1).
  Op pick(double u) const;
};
Result<Mix> parse_mix(std::string_view s);

// One S3 (or plain HTTP) endpoint and how to authenticate to it.
struct Endpoint {
  std::string url;        // http://127.0.0.1:PORT
  std::string host;       // parsed from url
  uint16_t port = 80;
  std::string access_key;
  std::string secret_key;
  std::string region = "us-east-1";
  std::string bucket = "bench";
  bool anonymous = false;  // no Authorization header (nginx WebDAV, anonymous buckets)
  std::string label;       // "A" / "B" in reports; defaults to the url
};
// Fills host and port from url ("http://host:port"; https is not supported).
Status parse_endpoint_url(Endpoint& e);

struct BenchOptions {
  std::vector<Op> ops{Op::put};
  SizeDist size{10 * 1024, 10 * 1024};
  std::vector<int> concurrency{16};
  double duration_s = 10;       // per step, unless ops > 0
  uint64_t op_count = 0;        // per step: stop after this many operations (0: --duration)
  double warmup_s = 0;          // per step, not recorded
  int threads = 0;              // io_context threads; 0 = one per core
  uint64_t objects = 0;         // objects prepared for get/stat/list/mixed; 0 = automatic
  uint64_t part_size = 5 << 20; // multipart
  bool verify = false;          // compare read bodies byte for byte (length is always checked)
  bool no_prepare = false;      // the objects exist already (an earlier run with the same prefix and seed)
  bool sequential = false;      // get/stat read objects 0, 1, 2, ... in order instead of at random
  uint64_t seed = 0;            // of the data and object sizes; 0 = random
  Mix mix;
  std::string prefix;           // key prefix of this run; "" = random
  bool progress = true;         // live progress line on stderr when it is a terminal
  std::string json_file;
  Endpoint target;
  std::optional<Endpoint> compare;
};

}  // namespace reservoir::bench
