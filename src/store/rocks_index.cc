#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include "store/index.h"

namespace reservoir::store {

namespace {

Status rocks_status(const rocksdb::Status& s, const char* what) {
  if (s.ok()) return ok_status();
  if (s.IsNoSpace()) return resource_exhausted(std::string(what) + ": " + s.ToString());
  return io_error(std::string(what) + ": " + s.ToString());
}

class RocksIndex : public KvIndex {
 public:
  RocksIndex(std::unique_ptr<rocksdb::DB> db, bool wal) : db_(std::move(db)), wal_(wal) {}

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
  std::unique_ptr<rocksdb::DB> db_;
  const bool wal_;
};

}  // namespace

Result<std::unique_ptr<KvIndex>> open_rocks_index(const std::string& dir, bool wal) {
  rocksdb::Options opts;
  opts.create_if_missing = true;
  opts.IncreaseParallelism(2);
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
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(opts, dir, &raw);
  if (!s.ok()) return rocks_status(s, "open index");
  return std::unique_ptr<KvIndex>(std::make_unique<RocksIndex>(std::unique_ptr<rocksdb::DB>(raw), wal));
}

}  // namespace reservoir::store
