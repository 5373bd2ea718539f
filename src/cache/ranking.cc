#include "cache/ranking.h"

namespace reservoir::cache {

const char* policy_name(Policy p) { return p == Policy::lru ? "lru" : "lfu"; }

Result<Policy> parse_policy(std::string_view s) {
  if (s == "lru") return Policy::lru;
  if (s == "lfu") return Policy::lfu;
  return invalid_argument("eviction policy must be \"lru\" or \"lfu\", not \"" + std::string(s) + "\"");
}

Ranking::Rank Ranking::rank_of(uint64_t last, uint64_t count, const std::string& unit) const {
  if (policy_ == Policy::lru) return {last, 0, unit};
  return {count, last, unit};
}

void Ranking::touch(const std::string& unit, uint64_t tick) {
  auto [it, fresh] = units_.try_emplace(unit);
  State& s = it->second;
  if (!fresh) order_.erase(rank_of(s.last, s.count, unit));
  s.last = tick;
  s.count += 1;
  order_.insert(rank_of(s.last, s.count, unit));
}

void Ranking::remove(const std::string& unit) {
  auto it = units_.find(unit);
  if (it == units_.end()) return;
  order_.erase(rank_of(it->second.last, it->second.count, unit));
  units_.erase(it);
}

uint64_t Ranking::count(const std::string& unit) const {
  auto it = units_.find(unit);
  return it == units_.end() ? 0 : it->second.count;
}

void Ranking::for_each_coldest(const std::function<bool(const std::string&)>& fn) const {
  for (auto& r : order_)
    if (!fn(std::get<2>(r))) return;
}

}  // namespace reservoir::cache
