#include "cache/record_lru.h"

#include <algorithm>

namespace reservoir::cache {

void RecordLru::touch(std::string_view id, uint64_t version) {
  std::lock_guard lk(mu_);
  auto it = by_id_.find(id);
  if (it != by_id_.end()) {
    it->second->version = version;
    order_.splice(order_.end(), order_, it->second);
    return;
  }
  order_.push_back({std::string(id), version});
  auto node = std::prev(order_.end());
  by_id_.emplace(std::string_view(node->id), node);
}

bool RecordLru::refresh(std::string_view id) {
  std::lock_guard lk(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return false;
  order_.splice(order_.end(), order_, it->second);
  return true;
}

void RecordLru::remove(std::string_view id, uint64_t version) {
  std::lock_guard lk(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end() || (version && it->second->version != version)) return;
  auto node = it->second;
  by_id_.erase(it);
  order_.erase(node);
}

bool RecordLru::contains(std::string_view id, uint64_t version) const {
  std::lock_guard lk(mu_);
  auto it = by_id_.find(id);
  return it != by_id_.end() && it->second->version == version;
}

size_t RecordLru::size() const {
  std::lock_guard lk(mu_);
  return by_id_.size();
}

std::vector<std::pair<std::string, uint64_t>> RecordLru::coldest(size_t n) const {
  std::lock_guard lk(mu_);
  std::vector<std::pair<std::string, uint64_t>> out;
  out.reserve(std::min(n, order_.size()));
  for (auto it = order_.begin(); it != order_.end() && out.size() < n; ++it) out.emplace_back(it->id, it->version);
  return out;
}

std::vector<std::pair<std::string, uint64_t>> RecordLru::take_coldest(size_t n) {
  std::lock_guard lk(mu_);
  std::vector<std::pair<std::string, uint64_t>> out;
  n = std::min(n, order_.size());
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    auto it = order_.begin();
    out.emplace_back(it->id, it->version);
    order_.splice(order_.end(), order_, it);
  }
  return out;
}

}  // namespace reservoir::cache
