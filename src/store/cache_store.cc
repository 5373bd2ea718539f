#include "store/cache_store.h"
#include "store/keys.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/guarded.h"

namespace reservoir::store {

using namespace keys;


bool is_dirty_state(const ObjectMeta& m) {
  return m.state == PersistState::dirty || m.state == PersistState::persisting;
}

ReadHandle::~ReadHandle() {
  for (auto& p : pieces_)
    if (p.fd >= 0) ::close(p.fd);
}

ReadHandle& ReadHandle::operator=(ReadHandle&& o) noexcept {
  if (this != &o) {
    for (auto& p : pieces_)
      if (p.fd >= 0) ::close(p.fd);
    meta_ = std::move(o.meta_);
    pieces_ = std::move(o.pieces_);
    pages_ = std::move(o.pages_);
    reader_ = std::move(o.reader_);
    o.pieces_.clear();
  }
  return *this;
}

Result<size_t> ReadHandle::pread(uint64_t offset, char* buf, size_t n) const {
  if (pages_) return offset >= meta_.size ? size_t{0} : pages_->pread(offset, buf, static_cast<size_t>(std::min<uint64_t>(n, meta_.size - offset)));
  uint64_t base = 0;
  for (size_t i = 0; i < meta_.segments.size(); ++i) {
    uint64_t sz = meta_.segments[i].size;
    if (offset < base + sz) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(n, base + sz - offset));
      const Piece& piece = pieces_[i];
      if (piece.fd < 0) {
        std::memcpy(buf, piece.bytes().data() + (offset - base), want);
        return want;
      }
      ssize_t r;
      do { r = ::pread(piece.fd, buf, want, static_cast<off_t>(offset - base)); } while (r < 0 && errno == EINTR);
      if (r < 0) return errno_status("read cache file", errno);
      if (r == 0) return io_error("cache file shorter than its index record");
      return static_cast<size_t>(r);
    }
    base += sz;
  }
  return size_t{0};
}

namespace {
std::vector<std::string> tier_dirs(const std::vector<TierConfig>& tiers) {
  std::vector<std::string> dirs;
  for (auto& t : tiers) dirs.push_back(t.path + "/objects");
  return dirs;
}
}  // namespace

std::optional<std::string_view> ReadHandle::memory_view(uint64_t offset, uint64_t n) const {
  if (pages_) return std::nullopt;
  if (n == 0) return std::string_view();
  uint64_t base = 0;
  for (size_t i = 0; i < meta_.segments.size(); ++i) {
    uint64_t sz = meta_.segments[i].size;
    if (offset >= base && offset + n <= base + sz) {
      if (pieces_[i].fd >= 0) return std::nullopt;
      return pieces_[i].bytes().substr(static_cast<size_t>(offset - base), static_cast<size_t>(n));
    }
    base += sz;
  }
  return std::nullopt;
}

CacheStore::CacheStore(const StoreOptions& o, std::unique_ptr<KvIndex> index)
    : files_(tier_dirs(o.tiers)), index_(std::move(index)), durable_(o.durable), inline_max_(o.inline_max),
      space_(std::make_unique<CacheSpace>(o.tiers, o.policy, o.high_watermark, o.low_watermark)),
      hot_(o.memory), max_metadata_records_(o.max_metadata_records), max_unlink_wait_bytes_(o.max_unlink_wait_bytes) {
  for (const auto& t : o.tiers) volatile_tiers_.push_back(t.medium == "mem");
}

CacheStore::~CacheStore() { stop_evictor(); }

Result<std::unique_ptr<CacheStore>> CacheStore::open(const std::string& cache_dir, std::unique_ptr<KvIndex> index,
                                                     bool durable, size_t inline_max) {
  StoreOptions o;
  TierConfig t;
  t.path = cache_dir;
  o.tiers.push_back(t);
  o.durable = durable;
  o.inline_max = inline_max;
  return open(o, std::move(index));
}

Result<std::unique_ptr<CacheStore>> CacheStore::open(const StoreOptions& o, std::unique_ptr<KvIndex> index) {
  if (o.tiers.empty() || o.tiers.size() > 255) return invalid_argument("the cache needs 1 to 255 tiers");
  std::unique_ptr<CacheStore> s(new CacheStore(o, std::move(index)));
  RETURN_IF_ERROR(s->files_.init());
  RETURN_IF_ERROR(s->load_sequence());
  RETURN_IF_ERROR(s->check_tier_layout());
  RETURN_IF_ERROR(s->check_after_crash());
  // Dirty accounting, capacity and eviction order: one pass over the records.
  RETURN_IF_ERROR(s->rebuild_space());
  return s;
}

Status CacheStore::load_sequence() {
  auto v = index_->get(kSeqKey);
  if (!v.ok()) return v.status();
  uint64_t start = 1;
  if (v.value()) start = std::stoull(*v.value());
  // Ids handed out before a crash are all below the reserved limit.
  seq_ = start;
  seq_limit_ = start;
  return ok_status();
}

Status CacheStore::check_tier_layout() {
  std::vector<std::string> now;
  for (int t = 0; t < files_.tiers(); ++t) {
    std::error_code ec;
    auto p = std::filesystem::weakly_canonical(files_.dir(t), ec);
    now.push_back(ec ? files_.dir(t) : p.string());
  }
  auto v = index_->get(kTiersKey);
  if (!v.ok()) return v.status();
  std::vector<std::string> was;
  if (v.value()) {
    try {
      was = nlohmann::json::parse(*v.value()).get<std::vector<std::string>>();
    } catch (const std::exception& e) {
      return internal_error(std::string("cache index: bad tier layout record: ") + e.what());
    }
  }
  auto text = [](const std::vector<std::string>& dirs) {
    std::string out;
    for (size_t i = 0; i < dirs.size(); ++i) out += fmt::format("{}{}: {}", i ? ", " : "", i, dirs[i]);
    return out;
  };
  for (size_t t = 0; t < was.size(); ++t) {
    auto at = std::find(now.begin(), now.end(), was[t]);
    if (at != now.end() && static_cast<size_t>(at - now.begin()) != t)
      return failed_precondition(fmt::format(
          "cache tier {} was tier {} in the last run and is tier {} now: the index names tiers by their place, so "
          "tiers may only be added after the existing ones. Restore the order ({}) to start; configured now: {}",
          was[t], t, at - now.begin(), text(was), text(now)));
    if (at == now.end() && t < now.size())
      LOG_WARN("cache tier {} was at {} in the last run, now at {}: taken as the same tier moved", t, was[t], now[t]);
  }
  if (was == now) return ok_status();
  KvBatch b;
  b.put(kTiersKey, nlohmann::json(now).dump());
  return index_->write(b, true);
}

uint64_t CacheStore::next_id() {
  uint64_t id = seq_.fetch_add(1);
  if (id >= seq_limit_) {
    std::lock_guard lk(seq_mu_);
    while (id >= seq_limit_) {
      uint64_t limit = std::max(seq_limit_, id) + kSeqBlock;
      KvBatch b;
      b.put(kSeqKey, std::to_string(limit));
      Status st = index_->write(b, true);
      if (!st.ok()) {
        // Without a durable reservation ids could repeat after a crash.
        fmt::print(stderr, "fatal: cannot reserve ids in the index: {}\n", st.to_string());
        std::abort();
      }
      seq_limit_ = limit;
    }
  }
  return id;
}

std::mutex& CacheStore::key_lock(const std::string& bucket, const std::string& key) {
  size_t h = std::hash<std::string>()(bucket) * 31 + std::hash<std::string>()(key);
  return stripes_[h % stripes_.size()];
}

Result<std::unique_ptr<FileWriter>> CacheStore::new_file(bool allow_inline, uint64_t size_hint, bool clean) {
  // Dirty data must survive a restart of the machine: not on a mem tier.
  bool allow_mem = clean || !durable_;
  int tier = space_->reserve(size_hint, allow_mem);
  if (tier < 0) {
    // Eviction runs ahead of need; this is the fallback when it fell behind.
    // Only tiers the write may use and could fit in at all are evicted: a
    // write larger than every quota, or dirty data kept off mem tiers, must
    // not empty the cache for nothing.
    auto usage = space_->usage();
    for (int t = space_->tier_count() - 1; t >= 0 && tier < 0; --t) {
      const auto& u = usage[static_cast<size_t>(t)];
      if ((!allow_mem && space_->is_mem(t)) || (u.quota && size_hint > u.quota)) continue;
      evict(t, size_hint + (1 << 20), t + 1 < space_->tier_count(), "capacity");
      tier = space_->reserve(size_hint, allow_mem);
    }
    if (tier < 0)
      return Status(Code::resource_exhausted, "the cache is full of dirty, pinned or open data");
  }
  uint64_t id = open_writes_.begin([this] { return next_id(); });
  auto w = std::make_unique<FileWriter>(files_, allow_inline ? index_.get() : nullptr, id, inline_max_, tier,
                                        space_.get(), size_hint);
  w->track(&open_writes_);
  return w;
}

namespace {
// `data` is all of m and m's data is in the index (or empty).
bool fits_hot(const ObjectMeta& m, const std::string& data) {
  const auto& segs = m.segments;
  return !m.deleted && data.size() == m.size && segs.size() <= 1 && (segs.empty() || segs[0].in_index);
}
}  // namespace

void CacheStore::keep_hot(const std::string& bucket, const std::string& key, uint64_t version,
                          const std::string& data) {
  std::lock_guard lk(key_lock(bucket, key));
  auto cur = get(bucket, key);
  if (!cur.ok() || !cur.value() || cur.value()->version != version || !fits_hot(*cur.value(), data)) return;
  hot_.put(bucket, key, std::make_shared<HotObject>(HotObject{std::move(*cur.value()), data}));
}

Result<std::unique_ptr<FileWriter>> CacheStore::new_overflow_file() {
  uint64_t id = open_writes_.begin([this] { return next_id(); });
  auto w = std::make_unique<FileWriter>(files_, index_.get(), id, inline_max_, space_->tier_count() - 1,
                                        space_.get(), 0);
  w->track(&open_writes_);
  w->set_overflow();
  return w;
}

void CacheStore::remove_file(uint64_t id, int tier, uint64_t bytes) {
  // (A mem tier is empty after a power cut anyway.)
  if (durable_ || volatile_tiers_[static_cast<size_t>(tier)]) {
    files_.remove(id, tier);
    return;
  }
  {
    std::lock_guard lk(deferred_mu_);
    deferred_unlinks_.emplace_back(id, tier);
    deferred_bytes_ += bytes;
    if (deferred_bytes_ < max_unlink_wait_bytes_) return;
  }
  // The space accounting already counts these bytes as free: the next sync
  // point unlinks them now.
  std::lock_guard lk(ev_mu_);
  sync_soon_ = true;
  sync_cv_.notify_one();
}

void CacheStore::remove_data(const Segment& seg) {
  space_->remove_data(seg.tier, seg.size);
  if (!seg.in_index) {
    remove_file(seg.file_id, seg.tier, seg.size);
    return;
  }
  KvBatch b;
  b.del(inline_key(seg.file_id));
  (void)index_->write(b, false);
}

Result<int> CacheStore::open_data(const Segment& seg) const { return files_.open(seg.file_id, seg.tier); }

Result<std::vector<ReadHandle::Piece>> CacheStore::open_pieces(const ObjectMeta& m) {
  std::vector<ReadHandle::Piece> pieces;
  auto fail = [&](const Status& st) {
    for (auto& p : pieces)
      if (p.fd >= 0) ::close(p.fd);
    return st;
  };
  for (auto& seg : m.segments) {
    ReadHandle::Piece p;
    if (seg.in_index) {
      auto v = index_->get(inline_key(seg.file_id));
      if (!v.ok()) return fail(v.status());
      if (!v.value() || v.value()->size() != seg.size)
        return fail(io_error(fmt::format("data {:x} is missing from the index", seg.file_id)));
      p.data = std::move(*v.value());
    } else {
      auto fd = files_.open(seg.file_id, seg.tier);
      if (!fd.ok()) return fail(io_error("data is missing from the cache: " + fd.status().message()));
      p.fd = *fd;
    }
    pieces.push_back(std::move(p));
  }
  return pieces;
}

Result<ReadHandle> CacheStore::pin(const ObjectMeta& meta) {
  auto pieces = open_pieces(meta);
  if (!pieces.ok()) return pieces.status();
  return ReadHandle(meta, std::move(pieces.value()));
}

Result<std::optional<ObjectMeta>> CacheStore::get(const std::string& bucket, const std::string& key) {
  auto v = index_->get(obj_key(bucket, key));
  if (!v.ok()) return v.status();
  if (!v.value()) return std::optional<ObjectMeta>();
  auto m = decode_object(*v.value());
  if (!m.ok()) return m.status();
  return std::optional<ObjectMeta>(std::move(m.value()));
}

Result<ReadHandle> CacheStore::open(const std::string& bucket, const std::string& key) {
  std::lock_guard lk(key_lock(bucket, key));
  auto m = get(bucket, key);
  if (!m.ok()) return m.status();
  if (!m.value() || m.value()->deleted) return not_found(key);
  if (!m.value()->cached) return not_found(key + " is not cached");
  // Read through by page (PagedObject), not by this handle: a record that
  // became one since the caller looked (an erase, then a read through).
  if (m.value()->page_size) return not_found(key + " is read through by page");
  auto pieces = open_pieces(*m.value());
  if (!pieces.ok())
    return io_error(fmt::format("{}/{}: {}", bucket, key, pieces.status().message()));
  if (pieces->size() <= 1 && (pieces->empty() || pieces->front().fd < 0))
    hot_.put(bucket, key, std::make_shared<HotObject>(HotObject{*m.value(), pieces->empty() ? "" : pieces->front().data}));
  return ReadHandle(std::move(*m.value()), std::move(pieces.value()));
}

void CacheStore::remove_unshared(const std::string& bucket, const std::string& key, const ObjectMeta* old,
                                 const ObjectMeta& now) {
  if (!old) return;
  if (old->page_size && old->version != now.version) drop_pages(bucket, key, old->version);
  std::set<uint64_t> keep;
  for (auto& s : now.segments) keep.insert(s.file_id);
  for (auto& s : old->segments)
    if (!keep.count(s.file_id)) remove_data(s);
}

void CacheStore::account(const std::string& bucket, const ObjectMeta* old, const ObjectMeta* now) {
  int64_t dobj = 0, dbytes = 0;
  // Parked objects are acknowledged and not persisted either: they count.
  auto add = [&](const ObjectMeta* m, int sign) {
    if (m && !m->deleted && (is_dirty_state(*m) || m->state == PersistState::parked)) {
      dobj += sign;
      dbytes += sign * static_cast<int64_t>(m->size);
    }
  };
  add(old, -1);
  add(now, +1);
  if (dobj == 0 && dbytes == 0) return;
  dirty_objects_ += dobj;
  dirty_bytes_ += dbytes;
  std::lock_guard lk(bucket_mu_);
  auto& b = bucket_dirty_[bucket];
  b.first += dobj;
  b.second += dbytes;
}

StoreStats CacheStore::bucket_stats(const std::string& bucket) const {
  std::lock_guard lk(bucket_mu_);
  auto it = bucket_dirty_.find(bucket);
  if (it == bucket_dirty_.end()) return {};
  return {static_cast<uint64_t>(std::max<int64_t>(0, it->second.first)),
          static_cast<uint64_t>(std::max<int64_t>(0, it->second.second))};
}

Result<ObjectMeta> CacheStore::commit(const std::string& bucket, const std::string& key, ObjectMeta m,
                                     const Precondition& check, KvBatch with, const std::string* hot) {
  std::optional<ObjectMeta> old;
  {
    std::lock_guard lk(key_lock(bucket, key));
    auto cur = get(bucket, key);
    if (!cur.ok()) return cur.status();
    old = std::move(cur.value());
    if (check) RETURN_IF_ERROR(check(old));
    m.version = next_id();
    KvBatch b = std::move(with);
    b.put(obj_key(bucket, key), encode(m));
    if (is_dirty_state(m)) b.put(dirty_key(bucket, key), std::to_string(m.version));
    else b.del(dirty_key(bucket, key));
    b.del(parked_key(bucket, key));
    RETURN_IF_ERROR(index_->write(b, durable_));
    if (hot && fits_hot(m, *hot)) hot_.put(bucket, key, std::make_shared<HotObject>(HotObject{m, *hot}));
    else hot_.erase(bucket, key);
    account(bucket, old ? &*old : nullptr, &m);
    track_object(bucket, key, m);
  }
  remove_unshared(bucket, key, old ? &*old : nullptr, m);
  return m;
}

Result<bool> CacheStore::commit_if_absent(const std::string& bucket, const std::string& key, ObjectMeta m) {
  std::lock_guard lk(key_lock(bucket, key));
  auto cur = get(bucket, key);
  if (!cur.ok()) return cur.status();
  if (cur.value()) return false;
  m.version = next_id();
  KvBatch b;
  b.put(obj_key(bucket, key), encode(m));
  RETURN_IF_ERROR(index_->write(b, false));
  track_object(bucket, key, m);
  return true;
}

Result<bool> CacheStore::record_if_absent(const std::string& bucket, const std::string& key, ObjectMeta m) {
  auto r = commit_if_absent(bucket, key, std::move(m));
  // A burst of new records (HEADs of many keys) can outrun the evictor: past
  // a slack of 1/64 of the limit, each new one makes room itself (outside its
  // key's lock). Within the slack the evictor does it, so that a GET's fill,
  // whose record gets a page a moment later, does not forget another.
  uint64_t slack = max_metadata_records_ / 64 + 4;
  if (r.ok() && *r && max_metadata_records_ && metadata_only_.size() > max_metadata_records_ + slack)
    guarded("metadata records", [this] { forget_metadata_records(2, /*claim=*/true); });  // the record is in
  return r;
}

Result<bool> CacheStore::set_state_if_current(const std::string& bucket, const std::string& key, uint64_t version,
                                              PersistState state, const std::string& reason) {
  std::optional<ObjectMeta> old;
  {
    std::lock_guard lk(key_lock(bucket, key));
    auto cur = get(bucket, key);
    if (!cur.ok()) return cur.status();
    if (!cur.value() || cur.value()->version != version) return false;
    ObjectMeta m = *cur.value();
    old = m;
    m.state = state;
    m.park_reason = state == PersistState::parked ? reason : "";
    KvBatch b;
    if (m.deleted && state == PersistState::persisted) {
      b.del(obj_key(bucket, key));  // the under store agrees: drop the tombstone
    } else {
      b.put(obj_key(bucket, key), encode(m));
    }
    if (is_dirty_state(m)) b.put(dirty_key(bucket, key), std::to_string(version));
    else b.del(dirty_key(bucket, key));
    if (state == PersistState::parked) b.put(parked_key(bucket, key), std::to_string(version));
    else b.del(parked_key(bucket, key));
    // Entering or leaving `parked` is synced. `persisting` and `persisted` lost
    // in a power loss leave the entry dirty, so it is uploaded once more; the
    // next synced write (a PUT, a DELETE, an eviction of an object, the sync
    // barrier) makes them durable in order, before an object's data is unlinked.
    bool sync = state == PersistState::parked || old->state == PersistState::parked;
    RETURN_IF_ERROR(index_->write(b, durable_ && sync));
    hot_.erase(bucket, key);
    account(bucket, &*old, &m);
    if (m.deleted && state == PersistState::persisted) untrack_object(bucket, key);
    else track_object(bucket, key, m);
  }
  return true;
}

Status CacheStore::sync_index() { return durable_ ? index_->sync() : ok_status(); }

Status CacheStore::erase(const std::string& bucket, const std::string& key, KvBatch with) {
  std::optional<ObjectMeta> old;
  {
    std::lock_guard lk(key_lock(bucket, key));
    auto cur = get(bucket, key);
    if (!cur.ok()) return cur.status();
    // Nothing to erase; but the change this acknowledges must not be undone
    // by an earlier unsynced one (a persisted tombstone's removal, lost in a
    // power cut, would come back and delete what the under store now holds).
    if (!cur.value()) return with.ops.empty() ? sync_index() : index_->write(with, durable_);
    old = std::move(cur.value());
    KvBatch b = std::move(with);
    b.del(obj_key(bucket, key));
    b.del(dirty_key(bucket, key));
    b.del(parked_key(bucket, key));
    RETURN_IF_ERROR(index_->write(b, durable_));
    hot_.erase(bucket, key);
    account(bucket, &*old, nullptr);
    untrack_object(bucket, key);
  }
  ObjectMeta none;
  remove_unshared(bucket, key, &*old, none);
  return ok_status();
}

Status CacheStore::scan_objects(const std::string& bucket, const std::string& prefix, const std::string& start_after,
                                const std::function<bool(const std::string&, const ObjectMeta&)>& fn) {
  std::string base = obj_key(bucket, "");
  std::string start = obj_key(bucket, std::max(prefix, start_after));
  std::string end = prefix_end(obj_key(bucket, prefix));
  Status inner;
  Status st = index_->scan(start, end, [&](std::string_view k, std::string_view v) {
    std::string key(k.substr(base.size()));
    if (key <= start_after && !start_after.empty()) return true;
    auto m = decode_object(v);
    if (!m.ok()) {
      inner = m.status();
      return false;
    }
    return fn(key, *m);
  });
  RETURN_IF_ERROR(st);
  return inner;
}

Status CacheStore::scan_dirty(const std::function<bool(const std::string&, const std::string&)>& fn) {
  return index_->scan("d", "e", [&](std::string_view k, std::string_view) {
    auto [b, key] = split_bk(k.substr(1));
    return fn(b, key);
  });
}

Status CacheStore::scan_parked(const std::function<bool(const std::string&, const std::string&)>& fn) {
  return index_->scan("k", "l", [&](std::string_view k, std::string_view) {
    auto [b, key] = split_bk(k.substr(1));
    return fn(b, key);
  });
}

Status CacheStore::put_bucket(const std::string& name, int64_t created_ms) {
  KvBatch b;
  b.put(bucket_key(name), std::to_string(created_ms));
  return index_->write(b, durable_);
}

Status CacheStore::delete_bucket(const std::string& name) {
  KvBatch b;
  b.del(bucket_key(name));
  return index_->write(b, durable_);
}

Result<std::optional<int64_t>> CacheStore::bucket_created(const std::string& name) {
  auto v = index_->get(bucket_key(name));
  if (!v.ok()) return v.status();
  if (!v.value()) return std::optional<int64_t>();
  return std::optional<int64_t>(std::stoll(*v.value()));
}

Result<std::vector<std::pair<std::string, int64_t>>> CacheStore::list_buckets() {
  std::vector<std::pair<std::string, int64_t>> out;
  Status st = index_->scan("b", "c", [&](std::string_view k, std::string_view v) {
    out.emplace_back(std::string(k.substr(1)), std::stoll(std::string(v)));
    return true;
  });
  RETURN_IF_ERROR(st);
  return out;
}

Status CacheStore::put_upload(const UploadMeta& u) {
  KvBatch b;
  b.put(upload_key(u.upload_id), encode(u));
  return index_->write(b, durable_);
}

Result<std::optional<UploadMeta>> CacheStore::get_upload(const std::string& upload_id) {
  auto v = index_->get(upload_key(upload_id));
  if (!v.ok()) return v.status();
  if (!v.value()) return std::optional<UploadMeta>();
  auto u = decode_upload(*v.value());
  if (!u.ok()) return u.status();
  return std::optional<UploadMeta>(std::move(u.value()));
}

Status CacheStore::put_part(const std::string& upload_id, const PartMeta& p) {
  std::optional<PartMeta> old;
  {
    std::lock_guard lk(key_lock(upload_id, std::to_string(p.number)));
    auto v = index_->get(part_key(upload_id, p.number));
    if (!v.ok()) return v.status();
    if (v.value()) {
      auto o = decode_part(*v.value());
      if (o.ok()) old = o.value();
    }
    KvBatch b;
    b.put(part_key(upload_id, p.number), encode(p));
    RETURN_IF_ERROR(index_->write(b, durable_));
  }
  if (old && old->segment.file_id != p.segment.file_id) remove_data(old->segment);
  return ok_status();
}

Result<std::vector<PartMeta>> CacheStore::list_parts(const std::string& upload_id) {
  std::vector<PartMeta> out;
  std::string start = "p" + upload_id + std::string(1, '\0');
  Status inner;
  Status st = index_->scan(start, prefix_end(start), [&](std::string_view, std::string_view v) {
    auto p = decode_part(v);
    if (!p.ok()) {
      inner = p.status();
      return false;
    }
    out.push_back(*p);
    return true;
  });
  RETURN_IF_ERROR(st);
  RETURN_IF_ERROR(inner);
  return out;
}

Result<std::vector<UploadMeta>> CacheStore::list_uploads(const std::string& bucket) {
  std::vector<UploadMeta> out;
  Status st = index_->scan("u", "v", [&](std::string_view, std::string_view v) {
    auto u = decode_upload(v);
    if (u.ok() && u->bucket == bucket) out.push_back(*u);
    return true;
  });
  RETURN_IF_ERROR(st);
  return out;
}

Result<std::vector<PartMeta>> CacheStore::upload_removal(const std::string& upload_id, KvBatch& b) {
  auto parts = list_parts(upload_id);
  if (!parts.ok()) return parts.status();
  b.del(upload_key(upload_id));
  for (auto& p : *parts) b.del(part_key(upload_id, p.number));
  return parts;
}

Status CacheStore::drop_upload(const std::string& upload_id, const std::vector<uint64_t>& keep_files) {
  KvBatch b;
  auto parts = upload_removal(upload_id, b);
  if (!parts.ok()) return parts.status();
  RETURN_IF_ERROR(index_->write(b, durable_));
  for (auto& p : *parts)
    if (std::find(keep_files.begin(), keep_files.end(), p.segment.file_id) == keep_files.end())
      remove_data(p.segment);
  return ok_status();
}

StoreStats CacheStore::stats() const {
  return {static_cast<uint64_t>(std::max<int64_t>(0, dirty_objects_.load())),
          static_cast<uint64_t>(std::max<int64_t>(0, dirty_bytes_.load()))};
}

}  // namespace reservoir::store
