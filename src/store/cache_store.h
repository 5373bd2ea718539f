// The cache store: object versions in data files plus their metadata in the
// index, the dirty queue, buckets, and multipart uploads.
//
// Thread-safe; every call blocks (disk and index I/O), so callers run it off
// the network threads. Per key, commit/read/CAS are atomic with respect to
// each other (striped key locks, never held across I/O of object bodies).
#pragma once

#include <array>
#include <map>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "store/index.h"
#include "store/meta.h"
#include "store/object_files.h"

namespace reservoir::store {

// An open version of an object: its metadata and one open descriptor per
// segment. Holding it pins the bytes, even if the object is overwritten or
// deleted meanwhile (the descriptors keep unlinked files readable).
class ReadHandle {
 public:
  // One segment's bytes: an open file, or data copied from the index.
  struct Piece {
    int fd = -1;
    std::string data;
  };
  ReadHandle() = default;
  ReadHandle(ObjectMeta meta, std::vector<Piece> pieces) : meta_(std::move(meta)), pieces_(std::move(pieces)) {}
  ~ReadHandle();
  ReadHandle(ReadHandle&& o) noexcept : meta_(std::move(o.meta_)), pieces_(std::move(o.pieces_)) { o.pieces_.clear(); }
  ReadHandle& operator=(ReadHandle&& o) noexcept;

  const ObjectMeta& meta() const { return meta_; }
  // True when every byte is in memory (data kept in the index): reads never block.
  bool in_memory() const {
    for (auto& p : pieces_)
      if (p.fd >= 0) return false;
    return true;
  }
  // Reads up to n bytes at `offset` of the whole object; 0 at the end.
  Result<size_t> pread(uint64_t offset, char* buf, size_t n) const;

 private:
  ObjectMeta meta_;
  std::vector<Piece> pieces_;
};

struct StoreStats {
  uint64_t dirty_objects = 0;
  uint64_t dirty_bytes = 0;
};

class CacheStore {
 public:
  // `durable`: fsync data files and the index before commits return.
  // `inline_max`: data up to this size is kept in the index (0 = never).
  static Result<std::unique_ptr<CacheStore>> open(const std::string& cache_dir, std::unique_ptr<KvIndex> index,
                                                  bool durable, size_t inline_max = 64 * 1024);

  bool durable() const { return durable_; }

  // New object data with a fresh id; commit it, then reference its segment()
  // in a commit(). `allow_inline` = false forces a file.
  Result<std::unique_ptr<FileWriter>> new_file(bool allow_inline = true);
  // Removes data no record references any more (an abandoned write).
  void remove_data(const Segment& seg);
  // Pins data the caller just wrote and owns (not yet or no longer shared).
  Result<ReadHandle> pin(const ObjectMeta& meta);

  Result<std::optional<ObjectMeta>> get(const std::string& bucket, const std::string& key);
  // Opens the current version; not_found for absent keys and tombstones.
  Result<ReadHandle> open(const std::string& bucket, const std::string& key);

  // Makes `m` the current version of bucket/key (assigns m.version). A dirty
  // or tombstone record also enters the dirty queue; data files of the
  // previous version that `m` does not share are removed. Returns the new meta.
  // `check`, when given, sees the current record under the key lock and may
  // refuse the commit (conditional writes: If-Match, If-None-Match).
  using Precondition = std::function<Status(const std::optional<ObjectMeta>& current)>;
  Result<ObjectMeta> commit(const std::string& bucket, const std::string& key, ObjectMeta m,
                            const Precondition& check = nullptr);
  // Like commit, but only when the key has no record (a read-miss fill must
  // never replace a newer write). Returns false when a record exists.
  Result<bool> commit_if_absent(const std::string& bucket, const std::string& key, ObjectMeta m);
  // Sets the state of `version` if it is still current. persisted/parked
  // leave the dirty queue (parked ones are kept in a parked list). A tombstone
  // marked persisted is removed. Returns false if a newer version exists.
  Result<bool> set_state_if_current(const std::string& bucket, const std::string& key, uint64_t version,
                                    PersistState state, const std::string& reason = "");
  // Removes the record and its data (eviction of clean data, transient delete).
  Status erase(const std::string& bucket, const std::string& key);

  // Objects of a bucket under `prefix`, strictly after `start_after`, in key
  // order, including tombstones. fn returns false to stop.
  Status scan_objects(const std::string& bucket, const std::string& prefix, const std::string& start_after,
                      const std::function<bool(const std::string& key, const ObjectMeta&)>& fn);
  // Every entry of the dirty queue (dirty, persisting on restart, tombstones).
  Status scan_dirty(const std::function<bool(const std::string& bucket, const std::string& key)>& fn);
  Status scan_parked(const std::function<bool(const std::string& bucket, const std::string& key)>& fn);

  // Buckets known to the cache.
  Status put_bucket(const std::string& name, int64_t created_ms);
  Status delete_bucket(const std::string& name);
  Result<std::optional<int64_t>> bucket_created(const std::string& name);
  Result<std::vector<std::pair<std::string, int64_t>>> list_buckets();

  // Multipart uploads.
  Status put_upload(const UploadMeta& u);
  Result<std::optional<UploadMeta>> get_upload(const std::string& upload_id);
  Status put_part(const std::string& upload_id, const PartMeta& p);
  Result<std::vector<PartMeta>> list_parts(const std::string& upload_id);
  Result<std::vector<UploadMeta>> list_uploads(const std::string& bucket);
  // Removes the upload and its part records; data files of parts not in
  // `keep_files` are deleted.
  Status drop_upload(const std::string& upload_id, const std::vector<uint64_t>& keep_files);

  const ObjectFiles& files() const { return files_; }
  StoreStats stats() const;
  // Dirty objects and bytes of one bucket.
  StoreStats bucket_stats(const std::string& bucket) const;

 private:
  CacheStore(std::string dir, std::unique_ptr<KvIndex> index, bool durable, size_t inline_max);
  Result<std::vector<ReadHandle::Piece>> open_pieces(const ObjectMeta& m);
  Status load_sequence();
  uint64_t next_id();
  std::mutex& key_lock(const std::string& bucket, const std::string& key);
  void remove_unshared(const ObjectMeta* old, const ObjectMeta& now);
  void account(const std::string& bucket, const ObjectMeta* old, const ObjectMeta* now);

  ObjectFiles files_;
  std::unique_ptr<KvIndex> index_;
  bool durable_;
  size_t inline_max_;
  std::atomic<uint64_t> seq_{0};
  std::mutex seq_mu_;
  uint64_t seq_limit_ = 0;  // ids below it are reserved in the index
  std::array<std::mutex, 1024> stripes_;
  std::atomic<int64_t> dirty_objects_{0};
  std::atomic<int64_t> dirty_bytes_{0};
  mutable std::mutex bucket_mu_;
  std::map<std::string, std::pair<int64_t, int64_t>> bucket_dirty_;  // objects, bytes
};

bool is_dirty_state(const ObjectMeta& m);

}  // namespace reservoir::store
