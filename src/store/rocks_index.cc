#include <sys/statvfs.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include "common/guarded.h"
#include "common/log.h"
#include "common/workers.h"
#include "store/index.h"

namespace reservoir::store {

namespace {

Status rocks_status(const rocksdb::Status& s, const char* what) {
  if (s.ok()) return ok_status();
  if (s.IsNoSpace()) return resource_exhausted(std::string(what) + ": " + s.ToString());
  return io_error(std::string(what) + ": " + s.ToString());
}

uint64_t int_property(rocksdb::DB& db, const std::string& name) {
  uint64_t v = 0;
  return db.GetIntProperty(name, &v) ? v : 0;
}

uint64_t statvfs_free_bytes(const std::string& dir) {
  struct statvfs sv {};
  if (::statvfs(dir.c_str(), &sv) == 0) return static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize;
  LOG_WARN("index: free space of {} unknown ({}); collecting blob garbage anyway", dir, std::strerror(errno));
  return UINT64_MAX;
}

// Values of at least `min_blob_size` bytes (the data of small objects) live in
// blob files, so compactions move only their references. A blob file is
// deleted once every value in it is garbage; the rest of the garbage (objects
// evicted or overwritten among others still cached) is collected here: when it
// reaches `gc_garbage_ratio` of the blob files and `gc_min_garbage` bytes, a
// full compaction rewrites the live values into new files. Woken by RocksDB
// after each flush and compaction.
class BlobCollector : public rocksdb::EventListener {
 public:
  BlobCollector(std::string dir, const RocksIndexOptions& o) : dir_(std::move(dir)), o_(o) {}

  void OnFlushCompleted(rocksdb::DB*, const rocksdb::FlushJobInfo&) override { poke(); }
  void OnCompactionCompleted(rocksdb::DB*, const rocksdb::CompactionJobInfo&) override { poke(); }

  void start(rocksdb::DB* db) {
    db_ = db;
    poke();
    // Without it, whole dead blob files are still deleted.
    start_workers(threads_, 1, [this] { run(); }, "index: blob garbage collector");
  }
  uint64_t collections() const { return collections_; }

  void stop() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    canceled_ = true;
    cv_.notify_all();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

 private:
  void poke() {
    {
      std::lock_guard lk(mu_);
      poked_ = true;
    }
    cv_.notify_all();
  }

  void run() {
    std::unique_lock lk(mu_);
    while (true) {
      cv_.wait(lk, [&] { return stop_ || poked_; });
      if (stop_) return;
      poked_ = false;
      lk.unlock();
      guarded("index: blob garbage collector", [this] { collect_if_due(); });
      lk.lock();
    }
  }

  void collect_if_due() {
    uint64_t garbage = int_property(*db_, rocksdb::DB::Properties::kLiveBlobFileGarbageSize);
    uint64_t total = int_property(*db_, rocksdb::DB::Properties::kLiveBlobFileSize);
    bool collected = collect(garbage, total);
    if (o_.on_check) o_.on_check(garbage, total, collected);
  }

  // True when a collection ran to its end.
  bool collect(uint64_t garbage, uint64_t total) {
    using P = rocksdb::DB::Properties;
    // Garbage a collection could not remove (held by a snapshot, or no room)
    // does not start another until as much again has gathered.
    floor_ = std::min(floor_, garbage);
    if (garbage < floor_ + o_.gc_min_garbage || garbage < o_.gc_garbage_ratio * static_cast<double>(total)) return false;
    // Until the old files go, the rewrite needs room for the live values and
    // for new table files. (The two sizes come from two reads, between which
    // a compaction may have dropped a file: hence the clamp.)
    uint64_t live = total > garbage ? total - garbage : 0;
    uint64_t need = live + int_property(*db_, P::kTotalSstFilesSize) + o_.gc_min_garbage;
    uint64_t room = o_.free_bytes ? o_.free_bytes(dir_) : statvfs_free_bytes(dir_);
    if (room < need) {
      LOG_WARN("index: {} bytes of blob garbage not collected: {} bytes free, {} needed", garbage, room, need);
      floor_ = garbage;
      return false;
    }
    rocksdb::CompactRangeOptions cro;
    cro.blob_garbage_collection_policy = rocksdb::BlobGarbageCollectionPolicy::kForce;
    cro.blob_garbage_collection_age_cutoff = 1.0;
    cro.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForceOptimized;
    cro.canceled = &canceled_;
    auto s = db_->CompactRange(cro, nullptr, nullptr);
    floor_ = int_property(*db_, P::kLiveBlobFileGarbageSize);
    if (canceled_) return false;
    if (!s.ok()) {
      LOG_WARN("index: collecting blob garbage failed: {}", s.ToString());
      return false;
    }
    LOG_INFO("index: blob files {} -> {} bytes ({} bytes of garbage before)", total,
             int_property(*db_, P::kLiveBlobFileSize), garbage);
    collections_++;
    return true;
  }

  const std::string dir_;
  const RocksIndexOptions o_;
  rocksdb::DB* db_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  bool poked_ = false;
  bool stop_ = false;
  std::atomic<bool> canceled_{false};
  uint64_t floor_ = 0;  // collector thread only
  std::atomic<uint64_t> collections_{0};
  std::vector<std::thread> threads_;  // the one collector thread; none if it could not start
};

class RocksIndex : public KvIndex {
 public:
  RocksIndex(std::unique_ptr<rocksdb::DB> db, bool wal, std::shared_ptr<BlobCollector> collector)
      : collector_(std::move(collector)), db_(std::move(db)), wal_(wal) {
    collector_->start(db_.get());
  }
  ~RocksIndex() override { collector_->stop(); }

  Result<std::optional<std::string>> get(std::string_view key) override {
    std::string v;
    auto s = db_->Get(rocksdb::ReadOptions(), rocksdb::Slice(key.data(), key.size()), &v);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok()) return rocks_status(s, "index get");
    return std::optional<std::string>(std::move(v));
  }

  Status write(const KvBatch& batch, bool sync) override {
    rocksdb::WriteBatch wb;
    for (auto& [k, v] : batch.ops) {
      if (v) wb.Put(k, *v);
      else wb.Delete(k);
    }
    rocksdb::WriteOptions wo;
    wo.sync = sync && wal_;
    wo.disableWAL = !wal_;
    RETURN_IF_ERROR(rocks_status(db_->Write(wo, &wb), "index write"));
    return sync && !wal_ ? this->sync() : ok_status();
  }

  IndexStats stats() override {
    IndexStats s;
    s.blob_bytes = int_property(*db_, rocksdb::DB::Properties::kLiveBlobFileSize);
    s.blob_garbage_bytes = int_property(*db_, rocksdb::DB::Properties::kLiveBlobFileGarbageSize);
    s.blob_collections = collector_->collections();
    return s;
  }

  Status sync() override {
    if (wal_) return rocks_status(db_->SyncWAL(), "index sync");
    rocksdb::FlushOptions fo;
    fo.allow_write_stall = true;
    return rocks_status(db_->Flush(fo), "index flush");
  }

  Status scan(std::string_view start, std::string_view end,
              const std::function<bool(std::string_view, std::string_view)>& fn) override {
    rocksdb::ReadOptions ro;
    rocksdb::Slice upper(end.data(), end.size());
    ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    for (it->Seek(rocksdb::Slice(start.data(), start.size())); it->Valid(); it->Next()) {
      auto k = it->key();
      auto v = it->value();
      if (!fn(std::string_view(k.data(), k.size()), std::string_view(v.data(), v.size()))) break;
    }
    return rocks_status(it->status(), "index scan");
  }

 private:
  // Declared first so it outlives the database, whose closing flush calls it.
  std::shared_ptr<BlobCollector> collector_;
  std::unique_ptr<rocksdb::DB> db_;
  const bool wal_;
};

}  // namespace

Result<std::unique_ptr<KvIndex>> open_rocks_index(const std::string& dir, bool wal, const RocksIndexOptions& o) {
  rocksdb::Options opts;
  opts.create_if_missing = true;
  opts.IncreaseParallelism(2);
  // Four background jobs (one flush; compactions beside it once level 0 or
  // the compaction debt grows): a garbage collection (a long manual
  // compaction) then does not hold the only compaction slot while level 0
  // fills up and RocksDB slows every write down.
  opts.max_background_jobs = 4;
  opts.OptimizeLevelStyleCompaction(64 << 20);
  opts.max_open_files = 512;
  opts.keep_log_file_num = 4;
  // Few cores: writers waiting for the group commit sleep rather than spin.
  opts.enable_write_thread_adaptive_yield = false;
  rocksdb::BlockBasedTableOptions t;
  // Every PUT of a new key looks it up first: a miss should not read the
  // index blocks of every table file.
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  // Object data in blob files, written once at flush (see BlobCollector): the
  // compactions of the index's own records then no longer copy it.
  opts.enable_blob_files = o.min_blob_size > 0;
  opts.min_blob_size = o.min_blob_size;
  auto collector = std::make_shared<BlobCollector>(dir, o);
  opts.listeners.push_back(collector);
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(opts, dir, &raw);
  if (!s.ok()) return rocks_status(s, "open index");
  return std::unique_ptr<KvIndex>(
      std::make_unique<RocksIndex>(std::unique_ptr<rocksdb::DB>(raw), wal, std::move(collector)));
}

}  // namespace reservoir::store
