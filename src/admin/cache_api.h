// The admin API's cache operations (no HTTP here; admin.cc routes to them):
// load jobs, free, pin/unpin, ttl rules, stat, and the cache metrics. Each
// call blocks and returns the HTTP status and a JSON body.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/config.h"
#include "s3/engine.h"

namespace reservoir::admin {

using Reply = std::pair<int, std::string>;

// "bucket/prefix" (leading slashes ignored) -> (bucket, prefix).
std::pair<std::string, std::string> split_prefix(std::string p);

class CacheAdmin {
 public:
  CacheAdmin(s3::Engine& engine, const Config& config) : engine_(engine), config_(config) {}
  ~CacheAdmin();  // waits for running load jobs

  // POST /admin/v1/load?prefix=bucket/prefix[&concurrency=N]: starts a job.
  Reply start_load(const std::string& prefix, int concurrency);
  // GET /admin/v1/jobs?id=N: progress of a load job.
  Reply job(const std::string& id);
  // POST /admin/v1/free?prefix=
  Reply free(const std::string& prefix);
  // POST /admin/v1/pin?prefix=, /unpin, /ttl?prefix=&ttl_ms=&action=
  Reply set_rule(const std::string& prefix, std::optional<bool> pin, std::optional<int64_t> ttl_ms,
                 const std::string& action);
  // GET /admin/v1/rules
  Reply rules();
  // GET /admin/v1/stat?path=bucket/key
  Reply stat(const std::string& path);
  // Prometheus text of the read cache and the tiers.
  std::string metrics();

 private:
  struct Job {
    std::string prefix;
    s3::LoadProgress progress;
    Status status;
    std::thread thread;
  };
  s3::Engine& engine_;
  const Config& config_;
  std::mutex mu_;
  std::map<uint64_t, std::unique_ptr<Job>> jobs_;
  uint64_t next_id_ = 1;
};

}  // namespace reservoir::admin
