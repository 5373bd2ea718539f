#include <map>
#include <mutex>

#include "store/index.h"

namespace reservoir::store {

namespace {

class MemoryIndex : public KvIndex {
 public:
  Result<std::optional<std::string>> get(std::string_view key) override {
    std::lock_guard lk(mu_);
    auto it = map_.find(std::string(key));
    if (it == map_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  Status write(const KvBatch& batch, bool) override {
    std::lock_guard lk(mu_);
    for (auto& [k, v] : batch.ops) {
      if (v) map_[k] = *v;
      else map_.erase(k);
    }
    return ok_status();
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
};

}  // namespace

std::unique_ptr<KvIndex> make_memory_index() { return std::make_unique<MemoryIndex>(); }

}  // namespace reservoir::store
