#include "store/cache_space.h"

#include <algorithm>

namespace reservoir::store {

std::string unit_id(const std::string& bucket, const std::string& key, int64_t page) {
  std::string s;
  s.reserve(bucket.size() + key.size() + 12);
  s.append(bucket).push_back('\0');
  s.append(key).push_back('\0');
  if (page >= 0) s.append(std::to_string(page));
  return s;
}

std::string object_id(const std::string& bucket, const std::string& key) { return bucket + '\0' + key; }

CacheSpace::CacheSpace(const std::vector<TierConfig>& tiers, cache::Policy policy, double high_watermark,
                       double low_watermark)
    : policy_(policy), high_(high_watermark), low_(low_watermark) {
  for (auto& t : tiers) {
    Tier x;
    x.config = t;
    x.ranking = std::make_unique<cache::Ranking>(policy);
    tiers_.push_back(std::move(x));
  }
}

bool CacheSpace::is_mem(int tier) const { return tiers_[static_cast<size_t>(tier)].config.medium == "mem"; }

bool CacheSpace::has_room(const Tier& t, uint64_t bytes) const {
  return t.config.quota == 0 || t.used + t.reserved + bytes <= t.config.quota;
}

int CacheSpace::reserve(uint64_t bytes, bool allow_mem, int first) {
  std::lock_guard lk(mu_);
  for (int i = std::max(0, first); i < static_cast<int>(tiers_.size()); ++i) {
    Tier& t = tiers_[static_cast<size_t>(i)];
    if (!allow_mem && t.config.medium == "mem") continue;
    if (!has_room(t, bytes)) continue;
    t.reserved += bytes;
    return i;
  }
  return -1;
}

void CacheSpace::unreserve(int tier, uint64_t bytes) {
  if (tier < 0) return;
  std::lock_guard lk(mu_);
  Tier& t = tiers_[static_cast<size_t>(tier)];
  t.reserved -= std::min(t.reserved, bytes);
}

void CacheSpace::add_data(int tier, uint64_t bytes) {
  if (tier < 0 || tier >= tier_count()) return;
  std::lock_guard lk(mu_);
  tiers_[static_cast<size_t>(tier)].used += bytes;
}

void CacheSpace::remove_data(int tier, uint64_t bytes) {
  if (tier < 0 || tier >= tier_count()) return;
  std::lock_guard lk(mu_);
  Tier& t = tiers_[static_cast<size_t>(tier)];
  t.used -= std::min(t.used, bytes);
}

void CacheSpace::track(const CacheUnit& u) {
  std::lock_guard lk(mu_);
  std::string id = unit_id(u.bucket, u.key, u.page);
  auto it = units_.find(id);
  if (it != units_.end() && it->second.tier != u.tier)
    tiers_[static_cast<size_t>(it->second.tier)].ranking->remove(id);
  units_[id] = u;
  tiers_[static_cast<size_t>(u.tier)].ranking->touch(id, ++tick_);
}

void CacheSpace::untrack(const std::string& bucket, const std::string& key, int64_t page, uint64_t version) {
  std::lock_guard lk(mu_);
  std::string id = unit_id(bucket, key, page);
  auto it = units_.find(id);
  if (it == units_.end() || (version && it->second.version != version)) return;
  tiers_[static_cast<size_t>(it->second.tier)].ranking->remove(id);
  units_.erase(it);
}

bool CacheSpace::touch(const std::string& bucket, const std::string& key, int64_t page) {
  std::lock_guard lk(mu_);
  std::string id = unit_id(bucket, key, page);
  auto it = units_.find(id);
  if (it == units_.end()) return false;
  tiers_[static_cast<size_t>(it->second.tier)].ranking->touch(id, ++tick_);
  return true;
}

void CacheSpace::add_reader(const std::string& bucket, const std::string& key) {
  std::lock_guard lk(mu_);
  ++readers_[object_id(bucket, key)];
}

void CacheSpace::remove_reader(const std::string& bucket, const std::string& key) {
  std::lock_guard lk(mu_);
  auto it = readers_.find(object_id(bucket, key));
  if (it != readers_.end() && --it->second <= 0) readers_.erase(it);
}

bool CacheSpace::being_read(const std::string& bucket, const std::string& key) const {
  std::lock_guard lk(mu_);
  return readers_.count(object_id(bucket, key)) > 0;
}

uint64_t CacheSpace::excess(int tier) const {
  std::lock_guard lk(mu_);
  const Tier& t = tiers_[static_cast<size_t>(tier)];
  if (t.config.quota == 0) return 0;
  double q = static_cast<double>(t.config.quota);
  uint64_t load = t.used + t.reserved;
  if (static_cast<double>(load) <= q * high_) return 0;
  return load - static_cast<uint64_t>(q * low_);
}

std::vector<CacheUnit> CacheSpace::victims(int tier, uint64_t bytes,
                                           const std::function<bool(const CacheUnit&)>& evictable) const {
  std::vector<CacheUnit> out;
  std::lock_guard lk(mu_);
  uint64_t got = 0;
  tiers_[static_cast<size_t>(tier)].ranking->for_each_coldest([&](const std::string& id) {
    const CacheUnit& u = units_.at(id);
    if (readers_.count(object_id(u.bucket, u.key)) || !evictable(u)) return true;
    out.push_back(u);
    got += u.bytes;
    return got < bytes;
  });
  return out;
}

std::vector<TierUsage> CacheSpace::usage() const {
  std::lock_guard lk(mu_);
  std::vector<TierUsage> out;
  for (auto& t : tiers_)
    out.push_back({t.config.medium, t.config.path, t.config.quota, t.used, t.reserved, t.ranking->size()});
  return out;
}

void CacheSpace::count_eviction(int tier, const std::string& reason) {
  std::lock_guard lk(mu_);
  ++evictions_[{tier, reason}];
}

std::map<std::pair<int, std::string>, uint64_t> CacheSpace::evictions() const {
  std::lock_guard lk(mu_);
  return evictions_;
}

}  // namespace reservoir::store
