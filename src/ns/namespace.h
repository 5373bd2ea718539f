// The namespace: resolves bucket/key to its mount, under-store path and
// effective policy. A mount at "/" makes every bucket a folder of its store;
// a mount at "/<name>" is the bucket <name>. Policies override per prefix
// ("/bucket/prefix/"), the longest match winning.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"
#include "ufs/ufs.h"

namespace reservoir::ns {

struct Mount {
  int id = 0;
  MountConfig config;
  std::unique_ptr<ufs::UnderStore> store;
  // Bumped whenever Reservoir changes the under store (persist, delete,
  // synchronous writes): cached listings of an older generation are stale.
  std::atomic<uint64_t> generation{0};
  bool is_root() const { return config.path == "/"; }
  void changed() { generation.fetch_add(1); }
};

struct EffectivePolicy {
  WriteMode write_mode = WriteMode::write_back;
  std::optional<std::chrono::milliseconds> ttl;
  TtlAction ttl_action = TtlAction::del;
  bool pin = false;
  ReadType read_type = ReadType::cache;
  std::optional<std::chrono::milliseconds> metadata_ttl;  // from the mount
};

struct Resolved {
  Mount* mount = nullptr;   // owned by the Namespace
  std::string ufs_path;     // object path inside the under store
  EffectivePolicy policy;
};

class Namespace {
 public:
  // Opens every mount's under store.
  static Result<std::unique_ptr<Namespace>> create(const Config& config);
  // For tests: mounts with ready-made stores.
  Namespace(std::vector<std::unique_ptr<Mount>> mounts, std::vector<PolicyConfig> policies);

  Result<Resolved> resolve(const std::string& bucket, const std::string& key) const;
  // Rules set at run time (reservoir pin/ttl): they apply after the
  // configuration's policies of the same path. Thread-safe.
  void set_runtime_rules(std::vector<PolicyConfig> rules);
  std::vector<PolicyConfig> runtime_rules() const;
  // Whether any policy pins bucket/key.
  bool pinned(const std::string& bucket, const std::string& key) const;
  // The mount serving a bucket and the bucket's path in its store ("" for a
  // bucket mount); not_found if no mount covers it.
  Result<Resolved> resolve_bucket(const std::string& bucket) const;
  // Buckets defined by mounts themselves ("/<name>" mounts).
  std::vector<std::string> mount_buckets() const;
  const std::vector<std::unique_ptr<Mount>>& mounts() const { return mounts_; }
  Mount* root() const;

 private:
  std::vector<std::unique_ptr<Mount>> mounts_;
  std::vector<PolicyConfig> policies_;
  mutable std::shared_mutex rules_mu_;
  std::vector<PolicyConfig> runtime_;
};

}  // namespace reservoir::ns
