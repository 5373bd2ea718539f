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
#include <condition_variable>
#include <functional>
#include <thread>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cache/record_lru.h"
#include "common/config.h"
#include "common/status.h"
#include "store/cache_space.h"
#include "store/hot_objects.h"
#include "store/index.h"
#include "store/meta.h"
#include "store/object_files.h"
#include "store/sync_point.h"

namespace reservoir::store {

// Bytes of an object cached by page, fetched from the under store on demand.
class PageSource {
 public:
  virtual ~PageSource() = default;
  virtual Result<size_t> pread(uint64_t offset, char* buf, size_t n) = 0;
  // The reader will read [first, first+length): fetch ahead within it.
  virtual void hint(uint64_t first, uint64_t length) = 0;
};

// An open version of an object: its metadata and one open descriptor per
// segment (or a PageSource for objects cached by page). Holding it pins the
// bytes, even if the object is overwritten or deleted meanwhile (the
// descriptors keep unlinked files readable), and marks the object as being
// read, which eviction respects.
class ReadHandle {
 public:
  // One segment's bytes: an open file, or data copied from the index.
  struct Piece {
    int fd = -1;
    std::string data;
    std::shared_ptr<const std::string> shared;  // instead of `data`: bytes held elsewhere (no copy)
    std::string_view bytes() const { return shared ? std::string_view(*shared) : std::string_view(data); }
  };
  ReadHandle() = default;
  ReadHandle(ObjectMeta meta, std::vector<Piece> pieces) : meta_(std::move(meta)), pieces_(std::move(pieces)) {}
  ReadHandle(ObjectMeta meta, std::shared_ptr<PageSource> pages) : meta_(std::move(meta)), pages_(std::move(pages)) {}
  ~ReadHandle();
  ReadHandle(ReadHandle&& o) noexcept
      : meta_(std::move(o.meta_)), pieces_(std::move(o.pieces_)), pages_(std::move(o.pages_)),
        reader_(std::move(o.reader_)) {
    o.pieces_.clear();
  }
  ReadHandle& operator=(ReadHandle&& o) noexcept;
  // Keeps `token` alive as long as the handle (a reader registration).
  void hold(std::shared_ptr<void> token) { reader_ = std::move(token); }
  void hint(uint64_t first, uint64_t length) const {
    if (pages_) pages_->hint(first, length);
  }

  const ObjectMeta& meta() const { return meta_; }
  // True when every byte is in memory (data kept in the index): reads never block.
  bool in_memory() const {
    if (pages_) return false;
    for (auto& p : pieces_)
      if (p.fd >= 0) return false;
    return true;
  }
  // Reads up to n bytes at `offset` of the whole object; 0 at the end.
  Result<size_t> pread(uint64_t offset, char* buf, size_t n) const;
  // The bytes [offset, offset+n) when they are in memory in one piece.
  std::optional<std::string_view> memory_view(uint64_t offset, uint64_t n) const;

 private:
  ObjectMeta meta_;
  std::vector<Piece> pieces_;
  std::shared_ptr<PageSource> pages_;
  std::shared_ptr<void> reader_;
};

struct StoreStats {
  uint64_t dirty_objects = 0;
  uint64_t dirty_bytes = 0;
};

struct StoreOptions {
  std::vector<TierConfig> tiers;      // data in <path>/objects of each
  bool durable = true;                // fsync data files and the index before commits return
  size_t inline_max = 64 * 1024;      // data up to this size is kept in the index (0 = never)
  cache::Policy policy = cache::Policy::lru;
  double high_watermark = 0.95;       // eviction starts above this share of a quota ...
  double low_watermark = 0.85;        // ... and frees down to this one
  uint64_t memory = 64ull << 20;      // small objects also held in memory, in all (0 = none)
  // Records that hold no data (metadata only: read through by HEAD, pages
  // not kept, empty objects) kept at most; the least recently used beyond
  // are forgotten (0 = no limit). Records with data go with their last byte.
  uint64_t max_metadata_records = 1'000'000;
  // With durable false, files let go of wait for the next sync point (see
  // remove_file); once this many bytes wait, it runs at once rather than
  // within 5 s, so that a tier sized to its disk does not run out of room.
  uint64_t max_unlink_wait_bytes = 64ull << 20;
};

struct MetadataRecordStats {
  uint64_t records = 0;    // persisted records holding no data
  uint64_t forgotten = 0;  // since the open
};

class CacheStore {
 public:
  // One tier at `cache_dir` without a quota.
  static Result<std::unique_ptr<CacheStore>> open(const std::string& cache_dir, std::unique_ptr<KvIndex> index,
                                                  bool durable, size_t inline_max = 64 * 1024);
  static Result<std::unique_ptr<CacheStore>> open(const StoreOptions& options, std::unique_ptr<KvIndex> index);
  ~CacheStore();

  bool durable() const { return durable_; }
  // Some of this data is in a file on a mem tier (empty after a reboot).
  bool on_volatile_tier(const std::vector<Segment>& segs) const {
    for (const auto& s : segs)
      if (!s.in_index && s.tier < volatile_tiers_.size() && volatile_tiers_[s.tier]) return true;
    return false;
  }

  // New object data with a fresh id on the fastest tier with room for
  // `size_hint` bytes (dirty data skips mem tiers when durable); commit it,
  // then reference its segment() in a commit(). `allow_inline` = false forces
  // a file. resource_exhausted when no tier has room even after evicting
  // clean data (the cache is full of dirty, pinned or open data).
  Result<std::unique_ptr<FileWriter>> new_file(bool allow_inline = true, uint64_t size_hint = 0, bool clean = false);
  // Data beyond every quota, on the last tier (overflow() is set): for a
  // write that goes straight through to the under store and is not kept.
  Result<std::unique_ptr<FileWriter>> new_overflow_file();
  // Removes data no record references any more (an abandoned write).
  void remove_data(const Segment& seg);
  // Unlinks a data file no record names any more. With durability "none"
  // the record's change is not synced yet: the unlink waits for the next
  // sync point, so that a record a power cut brings back still has its file.
  // (Not for tier moves: their record change is synced.) `bytes`: its size.
  void remove_file(uint64_t id, int tier, uint64_t bytes);
  // Pins data the caller just wrote and owns (not yet or no longer shared).
  Result<ReadHandle> pin(const ObjectMeta& meta);

  Result<std::optional<ObjectMeta>> get(const std::string& bucket, const std::string& key);
  // Opens the current version; not_found for absent keys, tombstones and
  // records read through by page (see PagedObject).
  Result<ReadHandle> open(const std::string& bucket, const std::string& key);

  // Makes `m` the current version of bucket/key (assigns m.version). A dirty
  // or tombstone record also enters the dirty queue; data files of the
  // previous version that `m` does not share are removed. Returns the new meta.
  // `check`, when given, sees the current record under the key lock and may
  // refuse the commit (conditional writes: If-Match, If-None-Match).
  using Precondition = std::function<Status(const std::optional<ObjectMeta>& current)>;
  // `with`: more index writes made in the same batch (data kept in the index).
  // `hot`: m's whole data, when it is kept in the index: kept in memory for
  // reads right after (see keep_hot).
  Result<ObjectMeta> commit(const std::string& bucket, const std::string& key, ObjectMeta m,
                            const Precondition& check = nullptr, KvBatch with = {},
                            const std::string* hot = nullptr);
  // Like commit, but only when the key has no record (a read-miss fill must
  // never replace a newer write). Returns false when a record exists.
  Result<bool> commit_if_absent(const std::string& bucket, const std::string& key, ObjectMeta m);
  // commit_if_absent for a record of the under store's answer (a read
  // through): beyond max_metadata_records plus a slack of 1/64 of it (and 4),
  // it forgets up to two of the coldest records holding no data before it
  // returns.
  Result<bool> record_if_absent(const std::string& bucket, const std::string& key, ObjectMeta m);
  // Sets the state of `version` if it is still current. persisted/parked
  // leave the dirty queue (parked ones are kept in a parked list). A tombstone
  // marked persisted is removed. Returns false if a newer version exists.
  Result<bool> set_state_if_current(const std::string& bucket, const std::string& key, uint64_t version,
                                    PersistState state, const std::string& reason = "");
  // Makes every index write so far durable (state marks are not synced on
  // their own); nothing to do without durability.
  Status sync_index();
  // Removes the record and its data (eviction of clean data, transient delete).
  // `with`: more index writes made in the same batch.
  Status erase(const std::string& bucket, const std::string& key, KvBatch with = {});

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
  // The removal of the upload's records, added to `b` (a completion writes it
  // in the batch of the object's record); returns its parts, whose data not
  // taken by the object the caller removes once `b` is written.
  Result<std::vector<PartMeta>> upload_removal(const std::string& upload_id, KvBatch& b);

  // --- objects cached by page (see PageSource) ---
  // The page's data, if cached for this version.
  Result<std::optional<Segment>> get_page(const std::string& bucket, const std::string& key, uint64_t version,
                                          uint64_t page);
  // Records a page of `version`; false (and the caller removes the data) if
  // that version is no longer current.
  Result<bool> put_page(const std::string& bucket, const std::string& key, uint64_t version, uint64_t page,
                        const Segment& seg);
  // Cached pages of a version, in order.
  Result<std::vector<std::pair<uint64_t, Segment>>> list_pages(const std::string& bucket, const std::string& key,
                                                              uint64_t version);
  // Records the under store's confirmation of `version` (metadata cache).
  Status set_checked(const std::string& bucket, const std::string& key, uint64_t version, int64_t checked_ms,
                     const std::string& ufs_etag);
  Result<int> open_data(const Segment& seg) const;
  // Data kept in the index (seg.in_index).
  Result<std::string> read_inline(const Segment& seg);
  // Removes the record of a clean `version` (and its pages, if any); false
  // if the key now holds another version or unpersisted data (or, with
  // clean_only false, only if it holds another version).
  Result<bool> erase_version(const std::string& bucket, const std::string& key, uint64_t version,
                             bool clean_only = true);

  // --- small objects in memory (see hot_objects.h) ---
  std::shared_ptr<const HotObject> hot(const std::string& bucket, const std::string& key) const {
    return hot_.get(bucket, key);
  }
  // Keeps `data` as the bytes of `version` if that version is current (and
  // kept in the index whole).
  void keep_hot(const std::string& bucket, const std::string& key, uint64_t version, const std::string& data);

  // --- capacity and eviction ---
  CacheSpace& space() { return *space_; }
  // Never evicts objects this says are pinned. Set before start_evictor().
  void set_pin_check(std::function<bool(const std::string& bucket, const std::string& key)> pinned);
  // Background eviction whenever a tier passes its high watermark; also
  // starts sweep_orphans() on a thread of its own.
  void start_evictor();
  void stop_evictor();
  // A sync point now (see sync_point.h); start_evictor also writes one
  // every 5 s.
  Status write_sync_point();
  // Stops the background work and writes the last sync point: call at a
  // clean stop, once no request is served any more.
  Status close();
  // Objects whose unsynced data did not survive the last stop (durability
  // "none", transient writes): forgotten at this open.
  uint64_t lost_at_open() const { return lost_at_open_; }
  // Frees up to `bytes` of clean data from `tier` (demoting it to the next
  // tier when `demote` and there is room, else dropping it). Returns the
  // bytes that left the tier.
  uint64_t evict(int tier, uint64_t bytes, bool demote, const std::string& reason);
  // Drops a clean unit (its page, or the whole object); false if it changed.
  Result<bool> drop_unit(const CacheUnit& u);
  // Moves a clean unit to another tier; false if it changed meanwhile.
  Result<bool> move_unit(const CacheUnit& u, int to_tier);
  // Drops clean data of the object (all pages or its segments). Dirty
  // objects are refused (failed_precondition). Returns the bytes dropped.
  // With `version`, only that version is freed: a newer one is left alone.
  Result<uint64_t> free_object(const std::string& bucket, const std::string& key, const std::string& reason,
                               std::optional<uint64_t> version = std::nullopt);
  // Removes data that no record referenced at open (written before a crash,
  // never committed, or whose removal was lost): files and `i<id>` entries
  // with ids handed out before this open, so never a running write's. Such
  // data is never referenced again, so this may run alongside writers. Once;
  // nothing is removed if a record could not be decoded at open.
  void sweep_orphans();

  // --- records that hold no data (see cache/record_lru.h) ---
  // Counts a read of the key's record, if it is one of them.
  void touch_record(const std::string& bucket, const std::string& key);
  // Forgets the least recently used of them beyond max_metadata_records
  // (the next read asks the under store again). Keys being read are passed
  // over; pinned keys are taken out of the count. Called by the evictor and
  // by record_if_absent; returns how many went. Without a limit nothing is
  // ranked nor counted. Looks at `most` records at most, for 20 ms at most;
  // `claim` makes them the most recent first, so that callers running at
  // once take other records.
  uint64_t forget_metadata_records(size_t most = 10'000, bool claim = false);
  MetadataRecordStats metadata_records() const;

  // --- runtime path rules (pin, ttl), kept in the index ---
  Status put_rule(const std::string& path, const std::string& json);
  Status delete_rule(const std::string& path);
  Result<std::vector<std::pair<std::string, std::string>>> list_rules();

  const ObjectFiles& files() const { return files_; }
  StoreStats stats() const;
  IndexStats index_stats() const { return index_->stats(); }
  // Dirty objects and bytes of one bucket.
  StoreStats bucket_stats(const std::string& bucket) const;

 private:
  CacheStore(const StoreOptions& o, std::unique_ptr<KvIndex> index);
  Result<std::vector<ReadHandle::Piece>> open_pieces(const ObjectMeta& m);
  Status rebuild_space();
  // The data records referenced at open: files by (id, tier), pieces kept in
  // the index by id.
  struct DataRefs {
    std::set<std::pair<uint64_t, int>> files;
    std::set<uint64_t> in_index;
    // false if already seen (a segment shared by several records).
    bool add(const Segment& s) {
      return s.in_index ? in_index.insert(s.file_id).second : files.insert({s.file_id, s.tier}).second;
    }
  };
  void remove_orphans(const DataRefs& referenced, uint64_t below);
  void track_object(const std::string& bucket, const std::string& key, const ObjectMeta& m);
  // The record is gone: no longer ranked as data nor as metadata only.
  void untrack_object(const std::string& bucket, const std::string& key);
  // What forget_metadata_records did with one ranked record.
  enum class Forget { forgotten, later, unranked };
  Forget forget_one(const std::string& id, uint64_t version);
  // The metadata-only ranking (kept only when max_metadata_records_ != 0);
  // version 0: any.
  void rank_metadata(const std::string& bucket, const std::string& key, uint64_t version);
  void unrank_metadata(const std::string& bucket, const std::string& key, uint64_t version = 0);
  void drop_pages(const std::string& bucket, const std::string& key, uint64_t version);
  // Whether the version has a cached page other than `page` (true on an index error).
  bool has_other_page(const std::string& bucket, const std::string& key, uint64_t version, uint64_t page);
  Result<Segment> copy_data(const Segment& seg, int to_tier);
  void evictor_loop();
  void sync_point_loop();
  // At open, before rebuild_space: checks the data written since the last
  // sync point (pages, unsynced objects and parts, mem tiers) and forgets
  // what did not survive.
  Status check_after_crash();
  Status load_sequence();
  // Records name a tier by its place in the configuration: refuses a start
  // on tiers reordered, or one inserted before others, since the last run.
  Status check_tier_layout();
  uint64_t next_id();
  std::mutex& key_lock(const std::string& bucket, const std::string& key);
  void remove_unshared(const std::string& bucket, const std::string& key, const ObjectMeta* old,
                       const ObjectMeta& now);
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
  std::unique_ptr<CacheSpace> space_;
  HotObjects hot_;
  cache::RecordLru metadata_only_;  // bucket '\0' key -> version; changed under the key's lock
  uint64_t max_metadata_records_;
  std::atomic<uint64_t> metadata_forgotten_{0};
  std::function<bool(const std::string&, const std::string&)> pinned_;
  std::mutex evict_mu_;  // one eviction pass at a time
  // One tier move at a time (eviction's demotions, readers' promotions): two
  // moves of one unit would copy into the same temporary file.
  std::mutex move_mu_;
  std::mutex ev_mu_;
  std::condition_variable ev_cv_;
  bool ev_stop_ = false;
  std::thread evictor_;
  std::mutex sweep_mu_;
  std::optional<DataRefs> sweep_referenced_;  // data in use at open, until swept
  // Files tier moves put in place since the open, while the sweep is pending
  // (the sweep's snapshot names their old tier).
  std::mutex moved_mu_;
  std::set<std::pair<uint64_t, int>> moved_;
  bool sweep_pending_ = false;
  uint64_t sweep_below_ = 0;                           // the first id of this open
  std::atomic<bool> sweep_stop_{false};
  std::thread sweeper_;
  OpenWrites open_writes_;         // data ids still being written
  std::mutex sync_point_mu_;       // one sync point at a time
  std::thread syncer_;             // sync_point_loop
  std::vector<bool> volatile_tiers_;  // mem tiers (tmpfs): empty after a reboot
  std::mutex deferred_mu_;
  std::vector<std::pair<uint64_t, int>> deferred_unlinks_;  // (id, tier) waiting for a sync point
  uint64_t deferred_bytes_ = 0;                             // their size
  const uint64_t max_unlink_wait_bytes_;
  bool sync_soon_ = false;          // (ev_mu_) deferred_bytes_ reached the limit
  std::condition_variable sync_cv_;  // (ev_mu_) wakes sync_point_loop
  uint64_t lost_at_open_ = 0;
};

bool is_dirty_state(const ObjectMeta& m);

}  // namespace reservoir::store
