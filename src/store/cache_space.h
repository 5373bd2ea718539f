// Capacity of the cache tiers and the order in which clean data leaves them.
//
// Tiers are ordered from the fastest (index 0) to the slowest. Every byte of
// data in a tier is counted (used), whatever it belongs to: objects, pages of
// read-through objects, multipart parts. A writer reserves room before it
// writes, so concurrent writers cannot overshoot a quota by more than the one
// object each has in flight. Clean units (a whole object written through the
// cache, or one page of an object read through it) are ranked for eviction by
// the configured policy; dirty data is never ranked, and units of objects that
// are pinned or being read are skipped when victims are chosen.
//
// Thread-safe; all calls are short and take one mutex.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/ranking.h"
#include "common/config.h"

namespace reservoir::store {

// A unit of eviction: one object version, or one page of it (page >= 0).
struct CacheUnit {
  std::string bucket;
  std::string key;
  uint64_t version = 0;
  int64_t page = -1;
  int tier = 0;
  uint64_t bytes = 0;
};

std::string unit_id(const std::string& bucket, const std::string& key, int64_t page);
// bucket '\0' key: one object, whatever its version.
std::string object_id(const std::string& bucket, const std::string& key);

struct TierUsage {
  std::string medium;
  std::string path;
  uint64_t quota = 0;  // 0 = unlimited
  uint64_t used = 0;
  uint64_t reserved = 0;
  uint64_t units = 0;  // clean units ranked for eviction
};

class CacheSpace {
 public:
  CacheSpace(const std::vector<TierConfig>& tiers, cache::Policy policy, double high_watermark, double low_watermark);

  int tier_count() const { return static_cast<int>(tiers_.size()); }
  bool is_mem(int tier) const;
  cache::Policy policy() const { return policy_; }

  // Reserves `bytes` on the highest tier with room, from `first` down; mem
  // tiers are skipped unless `allow_mem`. Returns the tier, or -1 if none has room.
  int reserve(uint64_t bytes, bool allow_mem, int first = 0);
  void unreserve(int tier, uint64_t bytes);
  // Data written to / removed from a tier.
  void add_data(int tier, uint64_t bytes);
  void remove_data(int tier, uint64_t bytes);

  // Clean units: ranked (and counted as an access), or no longer evictable.
  void track(const CacheUnit& u);
  // `version` != 0: only if the tracked unit is of that version.
  void untrack(const std::string& bucket, const std::string& key, int64_t page, uint64_t version = 0);
  // Counts an access to a tracked unit; false if it is not tracked.
  bool touch(const std::string& bucket, const std::string& key, int64_t page);

  // Objects being read are never evicted.
  void add_reader(const std::string& bucket, const std::string& key);
  void remove_reader(const std::string& bucket, const std::string& key);
  bool being_read(const std::string& bucket, const std::string& key) const;

  // Tiers over their high watermark need eviction down to the low one.
  // Returns the bytes to free on `tier` (0 = none).
  uint64_t excess(int tier) const;
  // Up to `bytes` worth of the coldest units of `tier` that `evictable`
  // accepts (called under the lock: it must not call back into CacheSpace).
  std::vector<CacheUnit> victims(int tier, uint64_t bytes,
                                 const std::function<bool(const CacheUnit&)>& evictable) const;

  std::vector<TierUsage> usage() const;
  void count_eviction(int tier, const std::string& reason);
  // (tier, reason) -> evicted units
  std::map<std::pair<int, std::string>, uint64_t> evictions() const;

 private:
  struct Tier {
    TierConfig config;
    uint64_t used = 0;
    uint64_t reserved = 0;
    std::unique_ptr<cache::Ranking> ranking;
  };
  bool has_room(const Tier& t, uint64_t bytes) const;

  cache::Policy policy_;
  double high_, low_;
  mutable std::mutex mu_;
  std::vector<Tier> tiers_;
  std::unordered_map<std::string, CacheUnit> units_;
  std::map<std::string, int> readers_;  // bucket\0key -> open read handles
  uint64_t tick_ = 0;
  std::map<std::pair<int, std::string>, uint64_t> evictions_;
};

}  // namespace reservoir::store
