// Eviction order of cached units (a whole object, or one page of one).
//
// A Ranking keeps the units of one tier ordered from the first to evict to
// the last, under a policy chosen in the configuration:
//   lru  least recently used first;
//   lfu  least frequently used first, ties broken by recency.
// Counts are per unit and survive while the unit stays cached. Not
// thread-safe: the owner (store::CacheSpace) serialises calls.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>

#include "common/status.h"

namespace reservoir::cache {

enum class Policy { lru, lfu };
const char* policy_name(Policy p);
Result<Policy> parse_policy(std::string_view s);

class Ranking {
 public:
  explicit Ranking(Policy p) : policy_(p) {}

  // Adds a unit (or counts an access to a known one). `tick` is a logical
  // clock: larger = more recent.
  void touch(const std::string& unit, uint64_t tick);
  void remove(const std::string& unit);
  bool contains(const std::string& unit) const { return units_.count(unit) > 0; }
  size_t size() const { return units_.size(); }
  uint64_t count(const std::string& unit) const;

  // Visits units from the first to evict; `fn` returns false to stop.
  void for_each_coldest(const std::function<bool(const std::string& unit)>& fn) const;

 private:
  using Rank = std::tuple<uint64_t, uint64_t, std::string>;  // (primary, secondary, unit)
  Rank rank_of(uint64_t last, uint64_t count, const std::string& unit) const;

  Policy policy_;
  struct State {
    uint64_t last = 0;
    uint64_t count = 0;
  };
  std::unordered_map<std::string, State> units_;
  std::set<Rank> order_;
};

}  // namespace reservoir::cache
