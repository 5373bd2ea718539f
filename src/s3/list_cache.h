// Pages of under-store listings kept for the mount's metadata_ttl (only when
// it is set and positive). A page is keyed by mount, prefix and start; it is
// stale once the TTL has passed or Reservoir has changed the under store
// since (the mount's generation). Bounded: cleared when it holds too many.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "ufs/ufs.h"

namespace reservoir::s3 {

class ListCache {
 public:
  explicit ListCache(size_t max_pages = 4096) : max_(max_pages) {}

  std::optional<ufs::ListPage> get(int mount, uint64_t generation, const std::string& prefix,
                                   const std::string& after, std::chrono::milliseconds ttl) {
    std::lock_guard lk(mu_);
    auto it = pages_.find(key(mount, prefix, after));
    if (it == pages_.end()) return std::nullopt;
    if (it->second.generation != generation || std::chrono::steady_clock::now() - it->second.at >= ttl) {
      pages_.erase(it);
      return std::nullopt;
    }
    ++hits_;
    return it->second.page;
  }

  void put(int mount, uint64_t generation, const std::string& prefix, const std::string& after,
           const ufs::ListPage& page) {
    std::lock_guard lk(mu_);
    if (pages_.size() >= max_) pages_.clear();
    pages_[key(mount, prefix, after)] = {generation, std::chrono::steady_clock::now(), page};
  }

  uint64_t hits() const {
    std::lock_guard lk(mu_);
    return hits_;
  }

 private:
  static std::string key(int mount, const std::string& prefix, const std::string& after) {
    return std::to_string(mount) + '\0' + prefix + '\0' + after;
  }
  struct Entry {
    uint64_t generation;
    std::chrono::steady_clock::time_point at;
    ufs::ListPage page;
  };
  size_t max_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> pages_;
  uint64_t hits_ = 0;
};

}  // namespace reservoir::s3
