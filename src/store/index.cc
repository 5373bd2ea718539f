#include <map>
#include <mutex>
#include <vector>

#include "store/index.h"

namespace reservoir::store {

namespace {

void apply_batch(std::map<std::string, std::string>& map, const KvBatch& batch) {
  for (auto& [k, v] : batch.ops) {
    if (v) map[k] = *v;
    else map.erase(k);
  }
}

class MemoryIndex : public KvIndex {
 public:
  Result<std::optional<std::string>> get(std::string_view key) override {
    std::lock_guard lk(mu_);
    auto it = map_.find(std::string(key));
    if (it == map_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  Status write(const KvBatch& batch, bool sync) override {
    std::lock_guard lk(mu_);
    apply_batch(map_, batch);
    // Like a write-ahead log: a synced write makes itself and every write
    // before it durable.
    unsynced_.push_back(batch);
    if (sync) {
      for (auto& b : unsynced_) apply_batch(durable_, b);
      unsynced_.clear();
    }
    return ok_status();
  }

  Status sync() override {
    std::lock_guard lk(mu_);
    for (auto& b : unsynced_) apply_batch(durable_, b);
    unsynced_.clear();
    return ok_status();
  }

  std::unique_ptr<KvIndex> after_power_loss() {
    std::lock_guard lk(mu_);
    auto copy = std::make_unique<MemoryIndex>();
    copy->map_ = durable_;
    copy->durable_ = durable_;
    return copy;
  }
  Status scan(std::string_view start, std::string_view end,
              const std::function<bool(std::string_view, std::string_view)>& fn) override {
    // Copy the range in slices so fn may write to the index.
    std::string cursor(start);
    bool first = true;
    for (;;) {
      std::vector<std::pair<std::string, std::string>> slice;
      {
        std::lock_guard lk(mu_);
        auto it = first ? map_.lower_bound(cursor) : map_.upper_bound(cursor);
        for (; it != map_.end() && it->first < end && slice.size() < 256; ++it) slice.emplace_back(*it);
      }
      first = false;
      if (slice.empty()) return ok_status();
      for (auto& [k, v] : slice)
        if (!fn(k, v)) return ok_status();
      cursor = slice.back().first;
    }
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::string> map_;
  std::map<std::string, std::string> durable_;  // what a power loss leaves
  std::vector<KvBatch> unsynced_;
};

}  // namespace

std::unique_ptr<KvIndex> make_memory_index() { return std::make_unique<MemoryIndex>(); }

std::unique_ptr<KvIndex> memory_index_after_power_loss(KvIndex& index) {
  auto* m = dynamic_cast<MemoryIndex*>(&index);
  return m ? m->after_power_loss() : nullptr;
}

}  // namespace reservoir::store
