// The cache store's pages, tiers and eviction (see cache_store.h).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "common/fileio.h"
#include "common/guarded.h"
#include "common/log.h"
#include "store/cache_store.h"
#include "store/keys.h"

namespace reservoir::store {

using namespace keys;

namespace {

bool clean_whole(const ObjectMeta& m) {
  return !m.deleted && m.state == PersistState::persisted && m.page_size == 0 && !m.segments.empty();
}

// A record of an object read through by page (its data, if any, is in pages).
bool clean_paged(const ObjectMeta& m) {
  return !m.deleted && m.state == PersistState::persisted && m.page_size != 0 && m.segments.empty();
}

// A persisted record without data of its own: metadata only, unless pages
// of it are cached (those take it out of the metadata-only ranking).
bool data_free(const ObjectMeta& m) {
  return !m.deleted && m.state == PersistState::persisted && m.segments.empty();
}

uint64_t data_bytes(const ObjectMeta& m) {
  uint64_t n = 0;
  for (auto& s : m.segments) n += s.size;
  return n;
}

// bucket, key, version, page of a page record's index key.
struct PageKey {
  std::string bucket, key;
  uint64_t version = 0, page = 0;
};
std::optional<PageKey> parse_page_key(std::string_view k) {
  k.remove_prefix(1);
  auto z1 = k.find('\0');
  if (z1 == std::string_view::npos) return std::nullopt;
  auto z2 = k.find('\0', z1 + 1);
  if (z2 == std::string_view::npos || k.size() - z2 - 1 != 26) return std::nullopt;
  PageKey p;
  p.bucket = std::string(k.substr(0, z1));
  p.key = std::string(k.substr(z1 + 1, z2 - z1 - 1));
  p.version = std::stoull(std::string(k.substr(z2 + 1, 16)), nullptr, 16);
  p.page = std::stoull(std::string(k.substr(z2 + 17, 10)), nullptr, 16);
  return p;
}

}  // namespace

void CacheStore::track_object(const std::string& bucket, const std::string& key, const ObjectMeta& m) {
  if (clean_whole(m))
    space_->track({bucket, key, m.version, -1, m.segments.front().tier, data_bytes(m)});
  else
    space_->untrack(bucket, key, -1);
  // A new version has no pages yet.
  if (data_free(m)) rank_metadata(bucket, key, m.version);
  else unrank_metadata(bucket, key);
}

void CacheStore::untrack_object(const std::string& bucket, const std::string& key) {
  space_->untrack(bucket, key, -1);
  unrank_metadata(bucket, key);
}

void CacheStore::rank_metadata(const std::string& bucket, const std::string& key, uint64_t version) {
  if (max_metadata_records_) metadata_only_.touch(object_id(bucket, key), version);
}

void CacheStore::unrank_metadata(const std::string& bucket, const std::string& key, uint64_t version) {
  if (max_metadata_records_) metadata_only_.remove(object_id(bucket, key), version);
}

Status CacheStore::rebuild_space() {
  DataRefs seen;
  bool complete = true;  // every record understood: only then are orphans removed
  Status inner;
  // Data in a tier no longer configured cannot be read (and may be dirty):
  // refuse to start rather than lose it silently.
  const int tiers = space_->tier_count();
  auto missing_tier = [&](int tier) {
    if (tier < tiers) return false;
    inner = failed_precondition(fmt::format(
        "the cache index holds data in tier {}, but only {} tier(s) are configured: restore that tier's "
        "[[cache.tier]] entry (its path and data) to start",
        tier, tiers));
    return true;
  };
  // Pages first: a record with a cached page is not metadata only.
  std::set<std::pair<std::string, uint64_t>> with_pages;  // (bucket '\0' key, version)
  Status st = index_->scan("g", "h", [&](std::string_view k, std::string_view v) {
    auto p = parse_page_key(k);
    auto seg = decode_segment(v);
    if (!p || !seg.ok()) {
      complete = false;
      return true;
    }
    if (missing_tier(seg->tier)) return false;
    seen.add(*seg);
    space_->add_data(seg->tier, seg->size);
    space_->track({p->bucket, p->key, p->version, static_cast<int64_t>(p->page), seg->tier, seg->size});
    if (max_metadata_records_) with_pages.insert({object_id(p->bucket, p->key), p->version});
    return true;
  });
  RETURN_IF_ERROR(st);
  RETURN_IF_ERROR(inner);
  st = index_->scan("o", "p", [&](std::string_view k, std::string_view v) {
    auto m = decode_object(v);
    if (!m.ok()) {
      inner = m.status();
      return false;
    }
    for (auto& s : m->segments) {
      if (missing_tier(s.tier)) return false;
      if (seen.add(s)) space_->add_data(s.tier, s.size);
    }
    auto [b, key] = split_bk(k.substr(1));
    account(b, nullptr, &*m);
    track_object(b, key, *m);
    if (with_pages.count({std::string(k.substr(1)), m->version})) unrank_metadata(b, key);
    return true;
  });
  RETURN_IF_ERROR(st);
  RETURN_IF_ERROR(inner);
  st = index_->scan("p", "q", [&](std::string_view, std::string_view v) {
    auto p = decode_part(v);
    if (!p.ok()) {
      complete = false;
      return true;
    }
    if (missing_tier(p->segment.tier)) return false;
    if (seen.add(p->segment)) space_->add_data(p->segment.tier, p->segment.size);
    return true;
  });
  RETURN_IF_ERROR(st);
  RETURN_IF_ERROR(inner);
  if (complete) {
    std::lock_guard lk(sweep_mu_);
    sweep_referenced_ = std::move(seen);
    sweep_below_ = seq_.load();
    std::lock_guard ml(moved_mu_);
    sweep_pending_ = true;
  }
  return ok_status();
}

void CacheStore::sweep_orphans() {
  std::lock_guard lk(sweep_mu_);
  if (!sweep_referenced_) return;
  remove_orphans(*sweep_referenced_, sweep_below_);
  if (sweep_stop_) return;
  sweep_referenced_.reset();
  std::lock_guard ml(moved_mu_);
  sweep_pending_ = false;
  moved_.clear();
}

void CacheStore::remove_orphans(const DataRefs& referenced, uint64_t below) {
  // Reading every small object's data takes a while on a big cache: start-up
  // does not wait for it, and it stops early when the store closes. A file is
  // an orphan in its own tier: a tier move keeps the id, so a crash during
  // one leaves the id's file in a tier its record does not name.
  auto orphan_file = [&](uint64_t id, int tier) { return id < below && !referenced.files.count({id, tier}); };
  auto orphan_entry = [&](uint64_t id) { return id < below && !referenced.in_index.count(id); };
  uint64_t files = 0, entries = 0;
  for (int t = 0; t < files_.tiers() && !sweep_stop_; ++t) {
    // The non-throwing forms throughout: an unreadable directory is skipped
    // (this runs on a background thread, where a throw ends the process).
    std::error_code ec;
    for (std::filesystem::directory_iterator shard(files_.dir(t), ec), end; !ec && shard != end; shard.increment(ec)) {
      std::string name = shard->path().filename().string();
      std::error_code ec1;
      if (name.size() != 2 || !shard->is_directory(ec1)) continue;  // skips tmp/
      if (sweep_stop_) break;
      std::error_code ec2;
      for (std::filesystem::directory_iterator f(shard->path(), ec2); !ec2 && f != end; f.increment(ec2)) {
        std::string fn = f->path().filename().string();
        if (fn.size() != 16 || fn.find_first_not_of("0123456789abcdef") != std::string::npos) continue;
        uint64_t id = std::stoull(fn, nullptr, 16);
        if (!orphan_file(id, t)) continue;
        // Not a file a tier move put there since the open (checked and
        // removed under the lock a move notes its file under, before
        // creating it).
        std::lock_guard ml(moved_mu_);
        if (moved_.count({id, t})) continue;
        std::error_code ec3;
        if (std::filesystem::remove(f->path(), ec3)) ++files;
      }
    }
  }
  KvBatch b;
  auto flush = [&] {
    if (!b.ops.empty()) (void)index_->write(b, durable_);
    b.ops.clear();
  };
  (void)index_->scan("i", inline_key(below), [&](std::string_view k, std::string_view) {
    if (sweep_stop_) return false;
    std::string hex(k.substr(1));
    if (hex.size() != 16 || hex.find_first_not_of("0123456789abcdef") != std::string::npos) return true;
    if (orphan_entry(std::stoull(hex, nullptr, 16))) {
      b.del(std::string(k));
      ++entries;
      if (b.ops.size() >= 1024) flush();
    }
    return true;
  });
  flush();
  if (files || entries) LOG_INFO("removed {} orphaned data files and {} orphaned index entries", files, entries);
}

// --- pages ---

Result<std::optional<Segment>> CacheStore::get_page(const std::string& bucket, const std::string& key,
                                                    uint64_t version, uint64_t page) {
  auto v = index_->get(page_key(bucket, key, version, page));
  if (!v.ok()) return v.status();
  if (!v.value()) return std::optional<Segment>();
  auto s = decode_segment(*v.value());
  if (!s.ok()) return s.status();
  return std::optional<Segment>(*s);
}

Result<bool> CacheStore::put_page(const std::string& bucket, const std::string& key, uint64_t version,
                                  uint64_t page, const Segment& seg) {
  std::lock_guard lk(key_lock(bucket, key));
  auto cur = get(bucket, key);
  if (!cur.ok()) return cur.status();
  if (!cur.value() || cur.value()->version != version || cur.value()->deleted || !cur.value()->page_size)
    return false;
  auto existing = index_->get(page_key(bucket, key, version, page));
  if (!existing.ok()) return existing.status();
  if (existing.value()) return false;  // fetched twice: keep the first
  KvBatch b;
  b.put(page_key(bucket, key, version, page), encode(seg));
  // Clean data: after a crash it is fetched again if lost.
  RETURN_IF_ERROR(index_->write(b, false));
  space_->track({bucket, key, version, static_cast<int64_t>(page), seg.tier, seg.size});
  unrank_metadata(bucket, key, version);
  return true;
}

Result<std::vector<std::pair<uint64_t, Segment>>> CacheStore::list_pages(const std::string& bucket,
                                                                        const std::string& key, uint64_t version) {
  std::vector<std::pair<uint64_t, Segment>> out;
  std::string pre = page_prefix(bucket, key, version);
  Status st = index_->scan(pre, prefix_end(pre), [&](std::string_view k, std::string_view v) {
    auto p = parse_page_key(k);
    auto s = decode_segment(v);
    if (p && s.ok()) out.emplace_back(p->page, *s);
    return true;
  });
  RETURN_IF_ERROR(st);
  return out;
}

bool CacheStore::has_other_page(const std::string& bucket, const std::string& key, uint64_t version,
                                uint64_t page) {
  bool other = false;
  std::string pre = page_prefix(bucket, key, version);
  Status st = index_->scan(pre, prefix_end(pre), [&](std::string_view k, std::string_view) {
    auto p = parse_page_key(k);
    other = !p || p->page != page;
    return !other;  // at most two entries are looked at
  });
  return other || !st.ok();
}

void CacheStore::drop_pages(const std::string& bucket, const std::string& key, uint64_t version) {
  auto pages = list_pages(bucket, key, version);
  if (!pages.ok() || pages->empty()) return;
  KvBatch b;
  for (auto& [page, seg] : *pages) b.del(page_key(bucket, key, version, page));
  if (!index_->write(b, false).ok()) return;
  for (auto& [page, seg] : *pages) {
    space_->untrack(bucket, key, static_cast<int64_t>(page), version);
    remove_data(seg);
  }
}

Result<std::string> CacheStore::read_inline(const Segment& seg) {
  auto v = index_->get(inline_key(seg.file_id));
  if (!v.ok()) return v.status();
  if (!v.value() || v.value()->size() != seg.size)
    return io_error(fmt::format("data {:x} is missing from the index", seg.file_id));
  return std::move(*v.value());
}

Result<bool> CacheStore::erase_version(const std::string& bucket, const std::string& key, uint64_t version,
                                       bool clean_only) {
  std::optional<ObjectMeta> old;
  {
    std::lock_guard lk(key_lock(bucket, key));
    auto cur = get(bucket, key);
    if (!cur.ok()) return cur.status();
    if (!cur.value() || cur.value()->version != version ||
        (clean_only && cur.value()->state != PersistState::persisted))
      return false;
    old = std::move(cur.value());
    KvBatch b;
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
  return true;
}

Status CacheStore::set_checked(const std::string& bucket, const std::string& key, uint64_t version,
                               int64_t checked_ms, const std::string& ufs_etag) {
  std::lock_guard lk(key_lock(bucket, key));
  auto cur = get(bucket, key);
  if (!cur.ok()) return cur.status();
  if (!cur.value() || cur.value()->version != version) return ok_status();
  ObjectMeta m = std::move(*cur.value());
  m.checked_ms = checked_ms;
  if (!ufs_etag.empty()) m.ufs_etag = ufs_etag;
  KvBatch b;
  b.put(obj_key(bucket, key), encode(m));
  hot_.erase(bucket, key);
  return index_->write(b, false);
}

// --- eviction ---

void CacheStore::set_pin_check(std::function<bool(const std::string&, const std::string&)> pinned) {
  pinned_ = std::move(pinned);
}

void CacheStore::start_evictor() {
  if (evictor_.joinable()) return;
  evictor_ = std::thread([this] { evictor_loop(); });
  sweeper_ = std::thread([this] { guarded("orphan sweep", [this] { sweep_orphans(); }); });
  syncer_ = std::thread([this] { sync_point_loop(); });
}

void CacheStore::stop_evictor() {
  {
    std::lock_guard lk(ev_mu_);
    ev_stop_ = true;
  }
  sweep_stop_ = true;
  ev_cv_.notify_all();
  sync_cv_.notify_all();
  if (evictor_.joinable()) evictor_.join();
  if (sweeper_.joinable()) sweeper_.join();
  if (syncer_.joinable()) syncer_.join();
}

void CacheStore::evictor_loop() {
  std::unique_lock lk(ev_mu_);
  while (!ev_stop_) {
    ev_cv_.wait_for(lk, std::chrono::milliseconds(50));
    if (ev_stop_) break;
    lk.unlock();
    guarded("evictor", [&] {
      for (int t = 0; t < space_->tier_count(); ++t) {
        uint64_t ex = space_->excess(t);
        if (ex) evict(t, ex, t + 1 < space_->tier_count(), "capacity");
      }
      forget_metadata_records();
    });
    lk.lock();
  }
}

uint64_t CacheStore::evict(int tier, uint64_t bytes, bool demote, const std::string& reason) {
  std::lock_guard guard(evict_mu_);
  auto victims = space_->victims(tier, bytes, [this](const CacheUnit& u) { return !pinned_ || !pinned_(u.bucket, u.key); });
  uint64_t freed = 0;
  for (auto& u : victims) {
    bool gone = false;
    if (demote) {
      int to = space_->reserve(u.bytes, true, tier + 1);
      if (to >= 0) {
        auto r = move_unit(u, to);
        space_->unreserve(to, u.bytes);
        if (r.ok() && *r) {
          gone = true;
          space_->count_eviction(tier, "demote");
        } else if (!r.ok()) {
          LOG_WARN("cannot demote {}/{}: {}", u.bucket, u.key, r.status().to_string());
        }
      }
    }
    if (!gone) {
      auto r = drop_unit(u);
      if (!r.ok() || !*r) continue;
      space_->count_eviction(tier, reason);
    }
    freed += u.bytes;
  }
  return freed;
}

void CacheStore::touch_record(const std::string& bucket, const std::string& key) {
  if (max_metadata_records_) metadata_only_.refresh(object_id(bucket, key));
}

uint64_t CacheStore::forget_metadata_records(size_t most, bool claim) {
  if (!max_metadata_records_) return 0;
  size_t n = metadata_only_.size();
  if (n <= max_metadata_records_) return 0;
  // At most this long per call (the evictor calls again in 50 ms; capacity
  // eviction runs in between).
  constexpr auto kBudget = std::chrono::milliseconds(20);
  auto deadline = std::chrono::steady_clock::now() + kBudget;
  uint64_t gone = 0, looked = 0;
  size_t want = std::min<size_t>(n - max_metadata_records_, most);
  auto victims = claim ? metadata_only_.take_coldest(want) : metadata_only_.coldest(want);
  for (auto& [id, version] : victims) {
    if (++looked % 64 == 0 && std::chrono::steady_clock::now() > deadline) break;
    switch (forget_one(id, version)) {
      case Forget::forgotten:
        ++gone;
        ++metadata_forgotten_;
        break;
      case Forget::later:  // being read, or an index error: the next coldest goes instead
        metadata_only_.refresh(id);
        break;
      case Forget::unranked:
        break;
    }
  }
  return gone;
}

CacheStore::Forget CacheStore::forget_one(const std::string& id, uint64_t version) {
  auto z = id.find('\0');
  std::string bucket = id.substr(0, z), key = id.substr(z + 1);
  if (pinned_ && pinned_(bucket, key)) {
    // Not counted while pinned (else a pinned prefix over the limit would
    // have every other record forgotten at once); ranked again when the
    // record next changes, or at the next open.
    metadata_only_.remove(id, version);
    return Forget::unranked;
  }
  if (space_->being_read(bucket, key)) return Forget::later;
  std::lock_guard lk(key_lock(bucket, key));
  // Every change of the record, and every page cached of it, updates the
  // ranking under this lock: still ranked means still metadata only. The
  // record and its pages are checked all the same, so that a ranking gone
  // wrong can cost a read through, never leave pages without their record.
  if (!metadata_only_.contains(id, version)) return Forget::unranked;
  auto cur = get(bucket, key);
  if (!cur.ok()) return Forget::later;
  const auto& m = cur.value();
  if (!m || m->version != version || !data_free(*m)) {
    metadata_only_.remove(id, version);
    return Forget::unranked;
  }
  if (m->page_size) {
    auto pages = list_pages(bucket, key, version);
    if (!pages.ok()) return Forget::later;
    if (!pages->empty()) {
      metadata_only_.remove(id, version);
      return Forget::unranked;
    }
  }
  KvBatch b;
  b.del(obj_key(bucket, key));
  // Clean: if a crash loses this delete, the record comes back, still true.
  if (!index_->write(b, false).ok()) return Forget::later;
  hot_.erase(bucket, key);
  untrack_object(bucket, key);
  return Forget::forgotten;
}

MetadataRecordStats CacheStore::metadata_records() const {
  return {metadata_only_.size(), metadata_forgotten_.load()};
}

Result<Segment> CacheStore::copy_data(const Segment& seg, int to_tier) {
  Segment out = seg;
  out.tier = static_cast<uint8_t>(to_tier);
  if (seg.in_index || seg.tier == to_tier) return out;
  auto in = files_.open(seg.file_id, seg.tier);
  if (!in.ok()) return in.status();
  std::string tmp = files_.tmp_path(seg.file_id, to_tier);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    ::close(*in);
    return errno_status("create cache file", errno);
  }
  std::vector<char> buf(1 << 20);
  uint64_t off = 0;
  Status st;
  while (off < seg.size && st.ok()) {
    ssize_t n = ::pread(*in, buf.data(), buf.size(), static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      st = n < 0 ? errno_status("read cache file", errno) : io_error("cache file shorter than its record");
      break;
    }
    st = write_fully(fd, buf.data(), static_cast<size_t>(n), "cache file");
    off += static_cast<uint64_t>(n);
  }
  ::close(*in);
  // Always fsynced: the copy keeps the id, which the sync point may already
  // count as on disk.
  if (st.ok() && ::fdatasync(fd) != 0) st = errno_status("fsync cache file", errno);
  ::close(fd);
  std::string to = files_.path(seg.file_id, to_tier);
  if (st.ok() && ::rename(tmp.c_str(), to.c_str()) != 0) st = errno_status("rename cache file", errno);
  if (st.ok()) fsync_dir(to.substr(0, to.rfind('/')));  // the record names it next
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  space_->add_data(to_tier, seg.size);
  return out;
}

namespace {
bool same_files(const std::vector<Segment>& a, const std::vector<Segment>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const Segment& x, const Segment& y) {
    return x.file_id == y.file_id && x.tier == y.tier && x.in_index == y.in_index;
  });
}
}  // namespace

Result<bool> CacheStore::move_unit(const CacheUnit& u, int to_tier) {
  std::lock_guard moving(move_mu_);
  std::vector<Segment> from, to;
  if (u.page < 0) {
    auto cur = get(u.bucket, u.key);
    if (!cur.ok()) return cur.status();
    if (!cur.value() || cur.value()->version != u.version || !clean_whole(*cur.value())) return false;
    from = cur.value()->segments;
  } else {
    auto seg = get_page(u.bucket, u.key, u.version, static_cast<uint64_t>(u.page));
    if (!seg.ok()) return seg.status();
    if (!seg.value()) return false;
    from.push_back(*seg.value());
  }
  auto undo = [&] {
    for (size_t i = 0; i < to.size(); ++i) {
      if (to[i].tier == from[i].tier) continue;
      space_->remove_data(to[i].tier, to[i].size);
      if (!to[i].in_index) files_.remove(to[i].file_id, to[i].tier);
    }
  };
  for (auto& s : from) {
    if (s.in_index && s.tier != to_tier) space_->add_data(to_tier, s.size);  // (already counted there otherwise)
    if (!s.in_index && s.tier != to_tier) {
      std::lock_guard ml(moved_mu_);
      if (sweep_pending_) moved_.insert({s.file_id, to_tier});  // not an orphan for the sweep
    }
    auto c = copy_data(s, to_tier);
    if (!c.ok()) {
      undo();
      return c.status();
    }
    to.push_back(*c);
  }
  {
    std::lock_guard lk(key_lock(u.bucket, u.key));
    auto cur = get(u.bucket, u.key);
    bool same = cur.ok() && cur.value() && cur.value()->version == u.version;
    KvBatch b;
    // Still the data that was copied (not data cached again meanwhile).
    if (same && u.page < 0 && clean_whole(*cur.value()) && same_files(cur.value()->segments, from)) {
      ObjectMeta m = *cur.value();
      m.segments = to;
      b.put(obj_key(u.bucket, u.key), encode(m));
    } else if (same && u.page >= 0) {
      auto seg = get_page(u.bucket, u.key, u.version, static_cast<uint64_t>(u.page));
      if (!seg.ok() || !seg.value() || !same_files({*seg.value()}, from)) same = false;
      else b.put(page_key(u.bucket, u.key, u.version, static_cast<uint64_t>(u.page)), encode(to[0]));
    } else {
      same = false;
    }
    // Synced even with durability "none": the old copy goes right after, and
    // a power cut must not bring back a record naming it. (Moves keep the
    // id, so their unlinks cannot wait for the sync point: a move back would
    // reuse the path.)
    if (same && !index_->write(b, true).ok()) same = false;
    hot_.erase(u.bucket, u.key);
    if (!same) {
      undo();
      return false;
    }
    CacheUnit moved = u;
    moved.tier = to_tier;
    space_->track(moved);
  }
  for (auto& s : from) {
    if (s.tier == to_tier) continue;
    space_->remove_data(s.tier, s.size);
    if (!s.in_index) files_.remove(s.file_id, s.tier);
  }
  return true;
}

Result<bool> CacheStore::drop_unit(const CacheUnit& u) {
  if (u.page >= 0) {
    std::optional<Segment> seg;
    {
      std::lock_guard lk(key_lock(u.bucket, u.key));
      auto s = get_page(u.bucket, u.key, u.version, static_cast<uint64_t>(u.page));
      if (!s.ok()) return s.status();
      if (!s.value()) {
        space_->untrack(u.bucket, u.key, u.page, u.version);
        return false;
      }
      // Moved to another tier since the caller looked (a reader that found
      // the old copy gone, an eviction of the tier it left): kept.
      if (s.value()->tier != u.tier) return false;
      seg = *s.value();
      KvBatch b;
      b.del(page_key(u.bucket, u.key, u.version, static_cast<uint64_t>(u.page)));
      // The last page of an object read through takes its record along, as a
      // whole object's eviction does: the index shrinks with the cache, and
      // the next read asks the under store again.
      if (!has_other_page(u.bucket, u.key, u.version, static_cast<uint64_t>(u.page))) {
        auto cur = get(u.bucket, u.key);  // unreadable: the page goes, the record stays
        const auto* m = cur.ok() && cur.value() ? &*cur.value() : nullptr;
        if (m && m->version == u.version && clean_paged(*m)) b.del(obj_key(u.bucket, u.key));
      }
      RETURN_IF_ERROR(index_->write(b, false));
      hot_.erase(u.bucket, u.key);
      space_->untrack(u.bucket, u.key, u.page, u.version);
      unrank_metadata(u.bucket, u.key, u.version);  // gone with its record, or had a page
    }
    remove_data(*seg);
    return true;
  }
  std::optional<ObjectMeta> old;
  {
    std::lock_guard lk(key_lock(u.bucket, u.key));
    auto cur = get(u.bucket, u.key);
    if (!cur.ok()) return cur.status();
    if (!cur.value() || cur.value()->version != u.version || !clean_whole(*cur.value())) return false;
    old = std::move(cur.value());
    KvBatch b;
    b.del(obj_key(u.bucket, u.key));
    RETURN_IF_ERROR(index_->write(b, durable_));
    hot_.erase(u.bucket, u.key);
    untrack_object(u.bucket, u.key);
  }
  ObjectMeta none;
  remove_unshared(u.bucket, u.key, &*old, none);
  return true;
}

Result<uint64_t> CacheStore::free_object(const std::string& bucket, const std::string& key, const std::string& reason,
                                         std::optional<uint64_t> version) {
  auto cur = get(bucket, key);
  if (!cur.ok()) return cur.status();
  if (!cur.value() || cur.value()->deleted) return uint64_t{0};
  if (version && cur.value()->version != *version) return uint64_t{0};  // replaced since it was chosen
  const ObjectMeta& m = *cur.value();
  if (m.state != PersistState::persisted)
    return failed_precondition(fmt::format("{}/{} is {}: not in the under store yet", bucket, key,
                                           persist_state_name(m.state)));
  uint64_t freed = 0;
  if (m.page_size) {
    auto pages = list_pages(bucket, key, m.version);
    if (!pages.ok()) return pages.status();
    for (auto& [page, seg] : *pages) {
      CacheUnit u{bucket, key, m.version, static_cast<int64_t>(page), seg.tier, seg.size};
      auto r = drop_unit(u);
      if (r.ok() && *r) {
        freed += seg.size;
        space_->count_eviction(seg.tier, reason);
      }
    }
    return freed;
  }
  if (m.segments.empty()) return uint64_t{0};
  CacheUnit u{bucket, key, m.version, -1, m.segments.front().tier, data_bytes(m)};
  auto r = drop_unit(u);
  if (!r.ok()) return r.status();
  if (*r) space_->count_eviction(u.tier, reason);
  return *r ? u.bytes : 0;
}

// --- rules ---

Status CacheStore::put_rule(const std::string& path, const std::string& json) {
  KvBatch b;
  b.put(rule_key(path), json);
  return index_->write(b, durable_);
}

Status CacheStore::delete_rule(const std::string& path) {
  KvBatch b;
  b.del(rule_key(path));
  return index_->write(b, durable_);
}

Result<std::vector<std::pair<std::string, std::string>>> CacheStore::list_rules() {
  std::vector<std::pair<std::string, std::string>> out;
  Status st = index_->scan("r", "s", [&](std::string_view k, std::string_view v) {
    out.emplace_back(std::string(k.substr(1)), std::string(v));
    return true;
  });
  RETURN_IF_ERROR(st);
  return out;
}

}  // namespace reservoir::store
