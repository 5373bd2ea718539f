// `reservoir bench`: the command-line front of the load generator. It sweeps
// operations x concurrency levels on one endpoint, or interleaved on two
// (--compare), prints a Markdown table per step and ratios, and writes JSON.
#pragma once

#include <string>

#include "bench/options.h"

namespace CLI {
class App;
}

namespace reservoir::bench {

// The flags as typed; turned into BenchOptions by bench_command().
struct BenchCli {
  std::string ops = "put";
  std::string endpoint = "http://127.0.0.1:9000";
  std::string access_key = "reservoir", secret_key = "reservoir-secret", region = "us-east-1", bucket = "bench";
  bool anonymous = false;
  std::string compare;
  std::string compare_access_key, compare_secret_key, compare_bucket;
  bool compare_anonymous = false;
  std::string obj_size = "10KiB";
  std::string concurrency = "16";
  std::string duration = "10s";
  std::string warmup = "0s";
  uint64_t ops_count = 0;
  int threads = 0;
  uint64_t objects = 0;
  std::string part_size = "5MiB";
  std::string mix = "put=30,get=60,stat=10";
  bool verify = false;
  bool no_prepare = false;
  bool sequential = false;
  uint64_t seed = 0;
  std::string prefix;
  bool no_progress = false;
  std::string json_file;
};

// Adds the `bench` subcommand to app, storing its flags in cli (which must
// outlive parsing).
CLI::App* add_bench_command(CLI::App& app, BenchCli& cli);

// Runs the benchmark; returns the process exit code (1 if any step had errors).
int bench_command(const BenchCli& cli);

// Converts the flags (exposed for tests).
Result<BenchOptions> to_options(const BenchCli& cli);

}  // namespace reservoir::bench
