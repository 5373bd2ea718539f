#include "s3/engine.h"

#include <unistd.h>

#include <fmt/format.h>

#include "common/hash.h"
#include "common/log.h"
#include "s3/errors.h"
#include "s3/names.h"

namespace reservoir::s3 {

using store::ObjectMeta;
using store::PersistState;

Engine::Engine(store::CacheStore& store, ns::Namespace& ns, persist::Persister& persister, const Config& config)
    : store_(store), ns_(ns), persister_(persister), config_(config),
      reads_(std::make_unique<ReadThrough>(store, config.cache)) {
  store_.set_pin_check([this](const std::string& b, const std::string& k) { return ns_.pinned(b, k); });
}

Engine::~Engine() { stop_maintenance(); }

namespace {

Status no_such_bucket(const std::string& b) { return s3_error("NoSuchBucket", "The specified bucket does not exist: " + b); }


// Reads the whole of a file on disk for an under-store upload.
class HandleSource : public ufs::Source {
 public:
  explicit HandleSource(const store::ReadHandle& h) : h_(h) {}
  Result<size_t> read(char* buf, size_t n) override {
    auto r = h_.pread(off_, buf, n);
    if (r.ok()) off_ += *r;
    return r;
  }

 private:
  const store::ReadHandle& h_;
  uint64_t off_ = 0;
};

ufs::ObjectInfo to_info(const ObjectMeta& m) {
  ufs::ObjectInfo info;
  info.size = m.size;
  info.etag = m.etag;
  info.content_type = m.content_type;
  info.headers = m.headers;
  info.user_meta = m.user_meta;
  info.tags = m.tags;
  info.mtime_ms = m.mtime_ms;
  return info;
}

}  // namespace

// --- buckets ---

Status Engine::bucket_exists(const std::string& bucket) {
  auto where = ns_.resolve_bucket(bucket);
  if (!where.ok()) return no_such_bucket(bucket);
  if (!where->mount->is_root()) return ok_status();
  auto known = store_.bucket_created(bucket);
  if (!known.ok()) return known.status();
  if (known.value()) return ok_status();
  // Created behind our back in the under store: adopt it.
  auto exists = where->mount->store->dir_exists(bucket);
  if (exists.ok() && exists.value()) {
    (void)store_.put_bucket(bucket, store::now_ms());
    return ok_status();
  }
  return no_such_bucket(bucket);
}

Result<std::vector<BucketInfo>> Engine::list_buckets() {
  std::map<std::string, int64_t> all;
  auto known = store_.list_buckets();
  if (!known.ok()) return known.status();
  for (auto& [n, t] : *known) all[n] = t;
  if (ns::Mount* root = ns_.root()) {
    auto dirs = root->store->list_dirs();
    if (dirs.ok())
      for (auto& d : *dirs)
        if (validate_bucket_name(d).ok() && !all.count(d)) all[d] = store::now_ms();
  }
  for (auto& b : ns_.mount_buckets())
    if (!all.count(b)) all[b] = 0;
  std::vector<BucketInfo> out;
  for (auto& [n, t] : all) out.push_back({n, t});
  return out;
}

Status Engine::create_bucket(const std::string& name) {
  RETURN_IF_ERROR(validate_bucket_name(name));
  if (bucket_exists(name).ok()) return s3_error("BucketAlreadyOwnedByYou");
  auto where = ns_.resolve_bucket(name);
  if (!where.ok()) return s3_error("InvalidBucketName", "No mount can hold bucket " + name);
  RETURN_IF_ERROR(where->mount->store->make_dir(name));
  return store_.put_bucket(name, store::now_ms());
}

Status Engine::head_bucket(const std::string& name) { return bucket_exists(name); }

Status Engine::delete_bucket(const std::string& name) {
  RETURN_IF_ERROR(bucket_exists(name));
  auto where = ns_.resolve_bucket(name);
  if (!where->mount->is_root()) return s3_error("MethodNotAllowed", "A mounted bucket cannot be deleted");
  ListRequest req;
  req.max_keys = 1;
  auto l = list(name, req);
  if (!l.ok()) return l.status();
  if (!l->contents.empty()) return s3_error("BucketNotEmpty");
  auto ups = store_.list_uploads(name);
  if (ups.ok())
    for (auto& u : *ups) {
      auto held = uploads_.lock("", u.upload_id, false);
      (void)store_.drop_upload(u.upload_id, {});
    }
  // Tombstones of this bucket must reach the under store before the directory goes.
  auto s = persister_.sync(name, "", std::chrono::seconds(30));
  if (!s.done) return s3_error("BucketNotEmpty", "The bucket still has deletes being persisted; retry shortly");
  Status st = where->mount->store->remove_dir(name);
  if (!st.ok() && st.code() == Code::failed_precondition) return s3_error("BucketNotEmpty");
  RETURN_IF_ERROR(st);
  return store_.delete_bucket(name);
}

// --- objects ---

Status Engine::check_write(const std::string& bucket, const std::string& key, uint64_t size) {
  RETURN_IF_ERROR(validate_key(key));
  RETURN_IF_ERROR(bucket_exists(bucket));
  auto where = ns_.resolve(bucket, key);
  if (!where.ok()) return where.status();
  if (where->policy.write_mode != WriteMode::transient) {
    Status st = where->mount->store->check_put(where->ufs_path, size);
    if (!st.ok())
      return s3_error("InvalidArgument",
                      fmt::format("The key cannot be stored in the under store {}: {}", where->mount->store->uri(), st.message()));
  }
  return ok_status();
}

Result<std::unique_ptr<store::FileWriter>> Engine::new_file(uint64_t size_hint, const std::string& bucket,
                                                            const std::string& key) {
  auto f = store_.new_file(true, size_hint);
  if (f.ok() || f.status().code() != Code::resource_exhausted) return f;
  if (!bucket.empty()) {
    auto where = ns_.resolve(bucket, key);
    if (where.ok() && where->mount->config.on_full == OnFull::through &&
        where->policy.write_mode != WriteMode::transient)
      return store_.new_overflow_file();
  }
  return s3_error("SlowDown", "The cache is full of data not yet persisted; retry after a while");
}

bool Engine::dirty_budget_full(const ns::Mount& m) const {
  if (!m.config.dirty_max_bytes && !m.config.dirty_max_objects) return false;
  store::StoreStats s;
  if (!m.is_root()) {
    s = store_.bucket_stats(m.config.path.substr(1));
  } else {
    // The root mount holds every bucket that no other mount claims.
    s = store_.stats();
    for (auto& b : ns_.mount_buckets()) {
      auto o = store_.bucket_stats(b);
      s.dirty_objects -= std::min(s.dirty_objects, o.dirty_objects);
      s.dirty_bytes -= std::min(s.dirty_bytes, o.dirty_bytes);
    }
  }
  return (m.config.dirty_max_bytes && s.dirty_bytes >= m.config.dirty_max_bytes) ||
         (m.config.dirty_max_objects && s.dirty_objects >= m.config.dirty_max_objects);
}

Result<ObjectMeta> Engine::commit_write(const std::string& bucket, const std::string& key, const ns::Resolved& where,
                                        ObjectMeta meta, const PutConditions& cond, store::FileWriter* data,
                                        store::KvBatch also) {
  auto with_data = [&] {
    store::KvBatch b = std::move(also);
    if (data) data->take_inline(b);
    return b;
  };
  // A read right after a write-back or transient write is answered from memory.
  const std::string* hot = data && data->in_index() ? &data->inline_data() : nullptr;
  // From the first look at the key to the commit, no other write of it runs:
  // a condition checked here still holds at the commit, and a synchronous
  // upload cannot land after (or be overtaken by) another write of the key.
  auto held = writes_.lock(bucket, key);
  // Conditional writes see the cached record, or the under store when the key
  // has none (checked first, outside the store's key lock). A record seen
  // here that is gone at the commit was evicted (no write of the key ran):
  // it was clean, so the under store holds what it said.
  bool ufs_has = false;
  std::string ufs_etag;
  if (cond.if_match || cond.if_none_match_star) {
    auto cur = store_.get(bucket, key);
    if (!cur.ok()) return cur.status();
    if (!cur.value()) {
      auto info = where.mount->store->head(where.ufs_path);
      if (info.ok()) {
        ufs_has = true;
        ufs_etag = info->etag;
      }
    } else if (!cur.value()->deleted) {
      ufs_has = !expired(*cur.value(), where.policy);
      ufs_etag = cur.value()->etag;
    }
  }
  auto check = [&](const std::optional<ObjectMeta>& cur) -> Status {
    if ((cond.if_version && (!cur || cur->version != *cond.if_version)) ||
        (cond.if_segments && (!cur || !store::same_data(cur->segments, *cond.if_segments))))
      return s3_error("OperationAborted", "The object changed while this request was applied to it; please try again.");
    bool exists = cur ? !cur->deleted && !expired(*cur, where.policy) : ufs_has;
    std::string etag = cur ? cur->etag : ufs_etag;
    if (cond.if_none_match_star && exists) return s3_error("PreconditionFailed");
    if (cond.if_match && (!exists || (*cond.if_match != "*" && *cond.if_match != etag))) {
      if (!exists) return s3_error("NoSuchKey");
      return s3_error("PreconditionFailed");
    }
    return ok_status();
  };
  WriteMode mode = where.policy.write_mode;
  if (where.policy.ttl && where.policy.ttl_action == TtlAction::del)
    meta.expires_at_ms = store::now_ms() + where.policy.ttl->count();
  if (mode == WriteMode::transient) {
    meta.state = PersistState::transient;
    return store_.commit(bucket, key, std::move(meta), check, with_data(), hot);
  }
  bool synchronous = mode != WriteMode::write_back;
  if (!synchronous && dirty_budget_full(*where.mount)) {
    if (where.mount->config.on_full == OnFull::reject)
      return s3_error("SlowDown", "The dirty budget of this mount is full; retry after a while");
    synchronous = true;
  }
  std::optional<ObjectMeta> current;
  if (synchronous) {
    // An older dirty version of the key must not land after this one: if one
    // is queued, this write joins the queue behind it instead. (A parked one
    // is superseded: retry-parked queues it again only under this lock.)
    auto cur = store_.get(bucket, key);
    if (!cur.ok()) return cur.status();
    current = cur.value();
    if (current && store::is_dirty_state(*current)) synchronous = false;
  }
  if (!synchronous) {
    meta.state = PersistState::dirty;
    auto r = store_.commit(bucket, key, std::move(meta), check, with_data(), hot);
    if (r.ok()) persister_.enqueue(bucket, key);
    return r;
  }
  // through / cache-through: the under store commits before the acknowledgement.
  RETURN_IF_ERROR(check(current));
  if (data) RETURN_IF_ERROR(data->write_inline());  // read back by the upload
  {
    auto h = store_.pin(meta);
    if (!h.ok()) return h.status();
    HandleSource src(h.value());
    Status st = where.mount->store->put(where.ufs_path, src, meta.size, to_info(meta));
    where.mount->changed();
    if (!st.ok()) {
      // The data may be shared (tags on an existing version, parts of an
      // upload): whoever wrote it fresh removes it.
      if (st.retryable()) return s3_error("ServiceUnavailable", "The under store is unavailable: " + st.message());
      return st;
    }
  }
  meta.state = PersistState::persisted;
  if (mode == WriteMode::through) {
    ObjectMeta gone = meta;
    // (On an error the caller removes the fresh data: not twice.)
    RETURN_IF_ERROR(store_.erase(bucket, key, std::move(also)));
    for (auto& s : meta.segments) store_.remove_data(s);
    return gone;
  }
  return store_.commit(bucket, key, std::move(meta), nullptr, std::move(also));
}

Result<ObjectMeta> Engine::finish_put(const std::string& bucket, const std::string& key,
                                      std::unique_ptr<store::FileWriter> file, const ObjectAttrs& attrs,
                                      const PutConditions& cond) {
  auto where = ns_.resolve(bucket, key);
  if (!where.ok()) return where.status();
  ObjectMeta m;
  m.size = file->size();
  m.crc32c = file->crc32c();
  m.etag = hex_encode(file->md5());
  m.content_type = attrs.content_type.empty() ? "binary/octet-stream" : attrs.content_type;
  m.headers = attrs.headers;
  m.user_meta = attrs.user_meta;
  m.checksums = attrs.checksums;
  m.tags = attrs.tags;
  m.mtime_ms = store::now_ms();
  RETURN_IF_ERROR(file->commit(store_.durable() && where->policy.write_mode != WriteMode::transient, true));
  if (m.size > 0) m.segments.push_back(file->segment());
  std::vector<store::Segment> fresh = m.segments;
  ns::Resolved w = where.value();
  if (file->overflow()) w.policy.write_mode = WriteMode::through;  // no room to keep it
  auto r = commit_write(bucket, key, w, std::move(m), cond, file.get());
  if (!r.ok())
    for (auto& s : fresh) store_.remove_data(s);  // nothing references it
  return r;
}

Result<uint64_t> Engine::retry_parked(const std::string& bucket, const std::string& prefix) {
  return persister_.retry_parked(bucket, prefix,
                                 [this](const std::string& b, const std::string& k, const std::function<void()>& fn) {
                                   auto held = writes_.lock(b, k);
                                   fn();
                                 });
}

Status Engine::delete_object(const std::string& bucket, const std::string& key) {
  RETURN_IF_ERROR(validate_key(key));
  RETURN_IF_ERROR(bucket_exists(bucket));
  auto where = ns_.resolve(bucket, key);
  if (!where.ok()) return where.status();
  auto held = writes_.lock(bucket, key);
  auto cur = store_.get(bucket, key);
  if (!cur.ok()) return cur.status();
  WriteMode mode = where->policy.write_mode;
  bool queued = cur.value() && store::is_dirty_state(*cur.value());
  if (mode == WriteMode::transient && !queued) return store_.erase(bucket, key);
  if (!where->mount->store->check_path(where->ufs_path).ok()) return store_.erase(bucket, key);
  if (mode != WriteMode::write_back && !queued) {
    Status st = where->mount->store->remove(where->ufs_path);
    where->mount->changed();
    if (!st.ok() && st.code() != Code::not_found) return st;
    return store_.erase(bucket, key);
  }
  return commit_tombstone(bucket, key);
}

Status Engine::commit_tombstone(const std::string& bucket, const std::string& key,
                                const store::CacheStore::Precondition& check) {
  ObjectMeta tomb;
  tomb.deleted = true;
  tomb.state = PersistState::dirty;
  tomb.mtime_ms = store::now_ms();
  auto r = store_.commit(bucket, key, std::move(tomb), check);
  if (!r.ok()) return r.status();
  persister_.enqueue(bucket, key);
  return ok_status();
}

Status Engine::put_tags(const std::string& bucket, const std::string& key, const store::Tags& tags) {
  // A write of the key between reading the current version and committing
  // its new tags aborts the commit (it would share data the write removed):
  // then the tags go on the newer version.
  for (int attempt = 1;; ++attempt) {
    Status st = put_tags_once(bucket, key, tags);
    if (st.ok() || attempt == 5 || to_s3_error(st).code != "OperationAborted") return st;
  }
}

Status Engine::put_tags_once(const std::string& bucket, const std::string& key, const store::Tags& tags) {
  auto h = open_object(bucket, key);
  if (!h.ok()) return h.status();
  ObjectMeta m = h->meta();
  m.tags = tags;
  auto where = ns_.resolve(bucket, key);
  if (!where.ok()) return where.status();
  PutConditions same;
  if (m.version) same.if_version = m.version;  // 0: served without a record
  // Tags travel with the object to the under store: a new version of the same bytes.
  WriteMode mode = where->policy.write_mode;
  // Data a read promoted to a mem tier cannot become part of a dirty version
  // (it would not survive a reboot): it gets a copy of its own too.
  bool volatile_data = mode == WriteMode::write_back && store_.durable() && store_.on_volatile_tier(m.segments);
  if ((mode != WriteMode::write_back && mode != WriteMode::transient) || m.page_size || volatile_data) {
    // Written through: copy to fresh data so that neither a failure nor the
    // uncached result of `through` can take the current version's data.
    // Read through by page: the cache may hold only some pages of it (kept
    // per version), so the new version gets all its bytes as data of its own.
    auto f = copy_to_file(*h, 0, m.size, bucket, key);
    if (!f.ok()) return f.status();
    ObjectAttrs a;
    a.content_type = m.content_type;
    a.headers = m.headers;
    a.user_meta = m.user_meta;
    a.tags = tags;
    return finish_put(bucket, key, std::move(f.value()), a, same).status();
  }
  same.if_segments = m.segments;  // the new version shares them
  return commit_write(bucket, key, where.value(), std::move(m), same).status();
}

Result<std::unique_ptr<store::FileWriter>> Engine::copy_to_file(const store::ReadHandle& src, uint64_t first,
                                                               uint64_t length, const std::string& bucket,
                                                               const std::string& key) {
  auto file = new_file(length, bucket, key);
  if (!file.ok()) return file.status();
  std::vector<char> buf(1 << 20);
  uint64_t off = first, end = first + length;
  while (off < end) {
    auto n = src.pread(off, buf.data(), static_cast<size_t>(std::min<uint64_t>(buf.size(), end - off)));
    if (!n.ok()) return n.status();
    if (*n == 0) return io_error("copy source ended early");
    RETURN_IF_ERROR((*file)->append(buf.data(), *n));
    off += *n;
  }
  return file;
}

}  // namespace reservoir::s3
