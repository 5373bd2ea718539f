// The S3 engine: bucket and object operations on top of the cache store, the
// namespace and the persister, free of HTTP. Every call blocks (disk, index,
// under store) and is thread-safe; the HTTP handlers run them on the blocking
// pool. Errors carry S3 codes (Status::s3_code) where the generic mapping of
// the Status code is not enough.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <array>
#include <mutex>
#include <thread>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/config.h"
#include "ns/namespace.h"
#include "persist/persister.h"
#include "s3/list_cache.h"
#include "s3/key_locks.h"
#include "s3/read_through.h"
#include "store/cache_store.h"

namespace reservoir::s3 {

// Content headers and metadata a client sets on an object.
struct ObjectAttrs {
  std::string content_type;
  std::map<std::string, std::string> headers;    // cache-control, content-disposition, content-encoding, content-language, expires
  std::map<std::string, std::string> user_meta;  // lower-case names without x-amz-meta-
  std::map<std::string, std::string> checksums;  // algo -> base64
  store::Tags tags;
};

struct PutConditions {
  std::optional<std::string> if_match;  // ETag, quotes stripped
  bool if_none_match_star = false;
  // Only while this version is current (a change of one version, e.g. its
  // tags); else OperationAborted.
  std::optional<uint64_t> if_version;
  // ... and while its data is still where these segments say (a tier move
  // keeps the version and changes them).
  std::optional<std::vector<store::Segment>> if_segments;
};

struct BucketInfo {
  std::string name;
  int64_t created_ms = 0;
};

struct ListEntry {
  std::string key;
  uint64_t size = 0;
  std::string etag;
  int64_t mtime_ms = 0;
};

struct ListRequest {
  std::string prefix;
  std::string delimiter;
  std::string start_after;  // exclusive: marker, continuation token or start-after
  int max_keys = 1000;
};

struct ListResult {
  std::vector<ListEntry> contents;
  std::vector<std::string> common_prefixes;
  bool truncated = false;
  std::string next_marker;  // last key or prefix returned, when truncated
};

// Progress of `reservoir load`.
struct LoadProgress {
  std::atomic<uint64_t> objects_total{0}, objects_done{0}, bytes_total{0}, bytes_done{0}, errors{0};
  std::atomic<bool> listed{false}, finished{false};
  std::atomic<bool> cancel{false};  // set by the owner: the load stops after the objects under way
  std::mutex mu;
  std::string first_error;
};

struct FreeResult {
  uint64_t objects = 0;
  uint64_t bytes = 0;
  uint64_t refused_dirty = 0;
  uint64_t refused_pinned = 0;
  std::vector<std::string> refused_keys;  // the first few
};

struct CompletedPart {
  int number = 0;
  std::string etag;  // quotes stripped
};

struct PartInfo {
  int number;
  uint64_t size;
  std::string etag;
  int64_t mtime_ms;
};

class Engine {
 public:
  // All references must outlive the engine.
  Engine(store::CacheStore& store, ns::Namespace& ns, persist::Persister& persister, const Config& config);
  ~Engine();

  // --- buckets ---
  Result<std::vector<BucketInfo>> list_buckets();
  Status create_bucket(const std::string& name);
  Status head_bucket(const std::string& name);
  Status delete_bucket(const std::string& name);

  // --- objects ---
  // Validates a write of bucket/key before its body is read.
  Status check_write(const std::string& bucket, const std::string& key, uint64_t size = 0);
  // Room for a body of `size_hint` bytes (0 = unknown). When the cache is
  // full of data it cannot evict, a PUT to bucket/key follows the mount's
  // on_full rule: `through` writes it straight to the under store (not
  // kept), `reject` (and parts of uploads) answer 503 SlowDown.
  Result<std::unique_ptr<store::FileWriter>> new_file(uint64_t size_hint = 0, const std::string& bucket = "",
                                                      const std::string& key = "");
  // Commits a fully received body. `md5_raw` is the body's MD5 (raw bytes).
  Result<store::ObjectMeta> finish_put(const std::string& bucket, const std::string& key,
                                       std::unique_ptr<store::FileWriter> file, const ObjectAttrs& attrs,
                                       const PutConditions& cond);
  // The current version, from the cache or read through from the under store.
  // `span`: the bytes [first, last] a GET will read (last may be past the
  // end), so that a cold read gets the metadata with its first bytes in one
  // request.
  Result<store::ReadHandle> open_object(const std::string& bucket, const std::string& key,
                                        std::optional<std::pair<uint64_t, uint64_t>> span = std::nullopt);
  // The current version when it is a small object held in memory and needs
  // no check against the under store: no disk, no blocking (network threads).
  std::optional<store::ReadHandle> open_hot(const std::string& bucket, const std::string& key);
  Result<store::ObjectMeta> head_object(const std::string& bucket, const std::string& key);
  Status delete_object(const std::string& bucket, const std::string& key);
  // Queues parked objects under the prefix again, each under its key's write
  // lock: a write through to the under store, which supersedes a parked
  // version, never has the older version queued behind its check.
  Result<uint64_t> retry_parked(const std::string& bucket, const std::string& prefix);
  // Replaces the tags (a new version sharing the data).
  Status put_tags(const std::string& bucket, const std::string& key, const store::Tags& tags);
  // Copies `length` bytes from `first` of a source version into a new file.
  // With a destination bucket/key, a full cache follows that mount's on_full
  // rule like a PUT (new_file); without one (a part), it answers 503.
  Result<std::unique_ptr<store::FileWriter>> copy_to_file(const store::ReadHandle& src, uint64_t first,
                                                          uint64_t length, const std::string& bucket = "",
                                                          const std::string& key = "");

  // Deletes version `m` of bucket/key, past its TTL, if it is still the
  // current one: a tombstone for the persister (the record alone for data
  // that never goes to the under store). A newer write of the key stays.
  void expire(const std::string& bucket, const std::string& key, const store::ObjectMeta& m);

  // --- listing ---
  Result<ListResult> list(const std::string& bucket, const ListRequest& req);

  // --- multipart ---
  Result<std::string> create_upload(const std::string& bucket, const std::string& key, const ObjectAttrs& attrs);
  Result<store::UploadMeta> get_upload(const std::string& bucket, const std::string& key, const std::string& upload_id);
  Result<std::string> put_part(const std::string& upload_id, int number, std::unique_ptr<store::FileWriter> file);
  Result<store::ObjectMeta> complete_upload(const std::string& bucket, const std::string& key,
                                            const std::string& upload_id, const std::vector<CompletedPart>& parts);
  Status abort_upload(const std::string& bucket, const std::string& key, const std::string& upload_id);
  Result<std::vector<PartInfo>> list_parts(const std::string& upload_id);
  Result<std::vector<store::UploadMeta>> list_uploads(const std::string& bucket);

  // --- cache management (engine_cache.cc) ---
  // Prefetches every object under bucket/prefix, `concurrency` at a time.
  Status load(const std::string& bucket, const std::string& prefix, int concurrency, LoadProgress& progress);
  // Drops clean cached data under bucket/prefix; dirty and pinned objects stay.
  Result<FreeResult> free(const std::string& bucket, const std::string& prefix);
  // What the cache holds of one key (JSON).
  Result<std::string> stat(const std::string& bucket, const std::string& key);
  // Runtime rules for "/bucket/prefix" (pin, ttl); kept across restarts.
  Status set_rule(const PolicyConfig& patch);
  Status load_rules();
  // Applies path TTLs to cached objects (free or delete); returns how many acted on.
  uint64_t apply_ttls();
  // Background TTL sweeps every cache.ttl_check_interval.
  void start_maintenance();
  void stop_maintenance();
  ReadThrough& reads() { return *reads_; }
  uint64_t stale_drops() const { return stale_drops_.load(); }
  uint64_t list_cache_hits() const { return list_cache_->hits(); }

  persist::Persister& persister() { return persister_; }
  store::CacheStore& store() { return store_; }
  ns::Namespace& names() { return ns_; }

 private:
  // `data`: the writer of a fresh object whose data kept in the index is not
  // written yet (committed with defer_inline): it goes into the record's batch.
  // `also`: more index writes made in that batch (a completed upload's removal).
  Result<store::ObjectMeta> commit_write(const std::string& bucket, const std::string& key, const ns::Resolved& where,
                                         store::ObjectMeta meta, const PutConditions& cond,
                                         store::FileWriter* data = nullptr, store::KvBatch also = {});
  // The record answering reads of bucket/key, checked against the under
  // store as the mount's metadata_ttl requires; nullopt when absent.
  Result<std::optional<store::ObjectMeta>> current(const std::string& bucket, const std::string& key,
                                                   const ns::Resolved& where);
  // A key the cache does not hold: one ranged GET gives the metadata (which
  // is recorded) and the first pages of `span` (handed to the page cache).
  // Fills `adopted` with the flights of those pages, for the reader.
  struct Adopted {
    uint64_t version = 0;
    ReadThrough::Run run;
  };
  Status open_cold(const std::string& bucket, const std::string& key, const ns::Resolved& where,
                   std::pair<uint64_t, uint64_t> span, Adopted* adopted);
  Status bucket_exists(const std::string& bucket);
  bool dirty_budget_full(const ns::Mount& m) const;
  Status put_tags_once(const std::string& bucket, const std::string& key, const store::Tags& tags);
  // Commits a tombstone (`check` as for CacheStore::commit) and queues it for the persister.
  Status commit_tombstone(const std::string& bucket, const std::string& key,
                          const store::CacheStore::Precondition& check = nullptr);
  // Records what the under store said of a key the cache did not hold, unless
  // a write of the key ran since `seen` (writes_.changes before asking).
  Result<bool> record_fill(const std::string& bucket, const std::string& key, const store::ObjectMeta& m,
                           uint64_t seen);

  store::CacheStore& store_;
  ns::Namespace& ns_;
  persist::Persister& persister_;
  const Config& config_;
  std::unique_ptr<ReadThrough> reads_;
  std::unique_ptr<ListCache> list_cache_ = std::make_unique<ListCache>();
  std::atomic<uint64_t> stale_drops_{0};
  // Held by every change of one multipart upload (a part, completion, abort),
  // so that none of them removes data another one is committing.
  KeyLocks uploads_;
  // Held by every write of a key (commit_write, delete, expiry) from its
  // first look at the key to its commit, the under-store call included.
  KeyLocks writes_;
  std::mutex maint_mu_;
  std::condition_variable maint_cv_;
  bool maint_stop_ = false;
  std::thread maint_;
};

// Whether a record has passed its path TTL with action delete.
bool expired(const store::ObjectMeta& m, const ns::EffectivePolicy& p);

}  // namespace reservoir::s3
