// The index: an ordered, durable key-value map behind the cache store and the
// dirty queue. RocksDB in production (rocks_index.cc), std::map in tests.
// Thread-safe. A write batch is atomic.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace reservoir::store {

struct KvBatch {
  // nullopt value = delete.
  std::vector<std::pair<std::string, std::optional<std::string>>> ops;
  void put(std::string k, std::string v) { ops.emplace_back(std::move(k), std::move(v)); }
  void del(std::string k) { ops.emplace_back(std::move(k), std::nullopt); }
};

// What the index reports about its own storage (for /metrics).
struct IndexStats {
  uint64_t blob_bytes = 0;          // RocksDB blob files (small objects' data)
  uint64_t blob_garbage_bytes = 0;  // of which counted as dead
  uint64_t blob_collections = 0;    // garbage collections run to their end
};

class KvIndex {
 public:
  virtual ~KvIndex() = default;
  virtual Result<std::optional<std::string>> get(std::string_view key) = 0;
  // sync = true: durable (WAL fsynced) before returning.
  virtual Status write(const KvBatch& batch, bool sync) = 0;
  // Makes every write so far durable (as a synced write would).
  virtual Status sync() = 0;
  // Calls fn(key, value) for keys in [start, end) in order until fn returns false.
  virtual Status scan(std::string_view start, std::string_view end,
                      const std::function<bool(std::string_view, std::string_view)>& fn) = 0;
  virtual IndexStats stats() { return {}; }
};

struct RocksIndexOptions {
  // Values this large (0 = none) are kept in blob files rather than in the
  // table files, which compactions rewrite (rocks_index.cc).
  uint64_t min_blob_size = 4096;
  // Live values are rewritten to new blob files once this much of the blob
  // files is garbage, in bytes and as a fraction of their size.
  uint64_t gc_min_garbage = 64ull << 20;
  double gc_garbage_ratio = 0.5;
  // Tests: called after each check with the blob files' garbage and size
  // before it, and whether a collection ran; replaces the file system's free
  // bytes of the index's directory.
  std::function<void(uint64_t garbage, uint64_t blob_bytes, bool collected)> on_check;
  std::function<uint64_t(const std::string& dir)> free_bytes;
};

// wal = false: no write-ahead log; sync() (and a synced write) flushes the
// memtable to a table file. For use behind the index journal only.
Result<std::unique_ptr<KvIndex>> open_rocks_index(const std::string& dir, bool wal = true,
                                                  const RocksIndexOptions& options = {});
std::unique_ptr<KvIndex> make_memory_index();
// For crash tests: a new memory index holding what a power loss would leave
// of `index` (made by make_memory_index): every synced write and all writes
// before it. nullptr for any other index.
std::unique_ptr<KvIndex> memory_index_after_power_loss(KvIndex& index);

}  // namespace reservoir::store
