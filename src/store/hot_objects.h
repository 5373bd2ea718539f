// Small objects (data kept in the index) held in memory for reads that need
// neither a disk read nor a thread hop. Entries are whole versions (record
// and bytes); the store drops a key's entry under the key lock whenever it
// changes the key, so an entry is never older than the record. Bounded by
// bytes; the oldest entries go first. Thread-safe.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "store/meta.h"

namespace reservoir::store {

struct HotObject {
  ObjectMeta meta;
  std::string data;
};

class HotObjects {
 public:
  explicit HotObjects(uint64_t max_bytes) : max_(max_bytes) {}

  std::shared_ptr<const HotObject> get(const std::string& bucket, const std::string& key) const {
    std::lock_guard lk(mu_);
    auto it = map_.find(id(bucket, key));
    return it == map_.end() ? nullptr : it->second.obj;
  }

  // Replaces the key's entry (too large an object leaves none).
  void put(const std::string& bucket, const std::string& key, std::shared_ptr<const HotObject> obj) {
    uint64_t cost = obj->data.size() + 256;
    std::lock_guard lk(mu_);
    std::string k = id(bucket, key);
    drop_locked(k);
    if (cost > max_ / 8) return;
    order_.push_back(k);
    map_[k] = {std::move(obj), std::prev(order_.end()), cost};
    bytes_ += cost;
    while (bytes_ > max_ && !order_.empty()) drop_locked(order_.front());
  }

  void erase(const std::string& bucket, const std::string& key) {
    std::lock_guard lk(mu_);
    drop_locked(id(bucket, key));
  }

 private:
  static std::string id(const std::string& b, const std::string& k) { return b + '\0' + k; }
  void drop_locked(const std::string& k) {
    auto it = map_.find(k);
    if (it == map_.end()) return;
    bytes_ -= it->second.cost;
    order_.erase(it->second.pos);
    map_.erase(it);
  }
  struct Entry {
    std::shared_ptr<const HotObject> obj;
    std::list<std::string>::iterator pos;
    uint64_t cost;
  };
  uint64_t max_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> map_;
  std::list<std::string> order_;
  uint64_t bytes_ = 0;
};

}  // namespace reservoir::store
