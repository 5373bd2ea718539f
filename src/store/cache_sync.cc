// The sync point (see sync_point.h): written every few seconds and at a clean
// stop, checked at the next open.

#include <sys/stat.h>

#include <chrono>

#include <fmt/format.h>

#include "common/guarded.h"
#include "common/hash.h"
#include "common/log.h"
#include "store/cache_store.h"
#include "store/keys.h"

namespace reservoir::store {

using namespace keys;

namespace {
constexpr auto kSyncPointEvery = std::chrono::seconds(5);
}  // namespace

Status CacheStore::write_sync_point() {
  std::lock_guard lk(sync_point_mu_);
  std::vector<std::pair<uint64_t, int>> unlinks;  // of record changes made before this synced write
  uint64_t unlink_bytes = 0;
  {
    std::lock_guard dl(deferred_mu_);
    unlinks.swap(deferred_unlinks_);
    std::swap(unlink_bytes, deferred_bytes_);
  }
  auto taken = open_writes_.take([this] { return seq_.load(); });
  std::vector<std::string> failed;
  Status st = sync_files(taken.files, &failed);
  KvBatch b;
  b.put(kSyncPointKey, encode(SyncPoint{taken.below, std::move(taken.open), durable_}));
  if (st.ok()) st = index_->write(b, true);
  if (!st.ok()) {
    open_writes_.put_back(std::move(failed));
    std::lock_guard dl(deferred_mu_);
    deferred_unlinks_.insert(deferred_unlinks_.end(), unlinks.begin(), unlinks.end());
    deferred_bytes_ += unlink_bytes;
    return st;
  }
  // Every record change that let go of these files is durable now.
  for (const auto& [id, tier] : unlinks) files_.remove(id, tier);
  return ok_status();
}

void CacheStore::sync_point_loop() {
  std::unique_lock lk(ev_mu_);
  bool failed = false;
  while (!ev_stop_) {
    // Every few seconds, or at once when many bytes wait to be unlinked
    // (not right after a failure: that would retry at every unlink).
    sync_cv_.wait_for(lk, kSyncPointEvery, [&] { return ev_stop_ || (sync_soon_ && !failed); });
    if (ev_stop_) break;
    sync_soon_ = false;
    lk.unlock();
    failed = true;
    guarded("sync point", [&] {
      Status st = write_sync_point();
      failed = !st.ok();
      if (failed) LOG_WARN("cannot write the sync point: {}", st.to_string());
    });
    lk.lock();
  }
}

Status CacheStore::close() {
  stop_evictor();
  return write_sync_point();
}

namespace {

// Whether the bytes of `segs` (in order) are whole and have the CRC32C
// `crc`; inline pieces are read from the index. An error if a file cannot be
// read at all (that says nothing about its bytes).
Result<bool> crc_matches(CacheStore& store, const ObjectFiles& files, const std::vector<Segment>& segs,
                         uint32_t crc) {
  uint32_t got = 0;
  for (const auto& s : segs) {
    if (s.in_index) {
      auto data = store.read_inline(s);
      if (!data.ok()) return data.status();  // written with its record: an index error, not a torn write
      got = crc32c_extend(got, data->data(), data->size());
      continue;
    }
    auto whole = read_whole_file(files.path(s.file_id, s.tier), s.size,
                                 [&](const char* p, size_t n) { got = crc32c_extend(got, p, n); });
    if (!whole.ok() || !*whole) return whole;
  }
  return got == crc;
}

Result<bool> md5_matches(const ObjectFiles& files, const Segment& s, const std::string& etag) {
  if (s.in_index) return true;
  auto h = make_hasher(HashAlgo::md5);
  auto whole = read_whole_file(files.path(s.file_id, s.tier), s.size, [&](const char* p, size_t n) { h->update(p, n); });
  if (!whole.ok() || !*whole) return whole;
  return hex_encode(h->digest()) == etag;
}

// Size only: data on a mem tier is gone after a reboot, not torn.
bool whole_file(const ObjectFiles& files, const Segment& s) {
  struct stat st {};
  return s.in_index || (::stat(files.path(s.file_id, s.tier).c_str(), &st) == 0 &&
                        static_cast<uint64_t>(st.st_size) == s.size);
}

}  // namespace

Status CacheStore::check_after_crash() {
  auto v = index_->get(kSyncPointKey);
  if (!v.ok()) return v.status();
  if (!v.value()) {
    if (seq_.load() > 1)
      LOG_INFO("no sync point in the index (written by an older version): its data is trusted as it is");
    return write_sync_point();
  }
  auto sp = decode_sync_point(*v.value());
  if (!sp.ok()) return sp.status();
  // Data in a tier no longer configured is left to rebuild_space, which refuses to start.
  auto known = [&](const Segment& s) { return !s.in_index && s.tier < files_.tiers(); };
  auto on_mem = [&](const Segment& s) { return known(s) && volatile_tiers_[s.tier]; };
  auto after = [&](const Segment& s) { return known(s) && sp->unsure(s.file_id); };
  // Unsynced data of objects: durability "none", or transient writes.
  auto unsynced = [&](const ObjectMeta& m, const Segment& s) {
    return after(s) && (!sp->durable || m.state == PersistState::transient);
  };

  KvBatch fix;
  uint64_t checked = 0, pages_dropped = 0, objects_dropped = 0, lost = 0, parts_lost = 0;
  // Files checked and kept: whole in the page cache, maybe not on disk (a
  // kill -9 before a sync point). The sync point below vouches for them, so
  // it fdatasyncs them first.
  std::vector<std::string> kept;
  auto keep = [&](const Segment& s) { kept.push_back(files_.path(s.file_id, s.tier)); };
  Status failure;  // a file that cannot be read: fail the open rather than guess
  auto verdict = [&](const Result<bool>& r) {
    if (!r.ok()) failure = r.status();
    return r.ok() ? std::optional<bool>(*r) : std::nullopt;
  };
  // Pages are never fsynced: those written since the sync point are checked
  // against their CRC32C, those on a mem tier by their size.
  Status st = index_->scan("g", "h", [&](std::string_view k, std::string_view val) {
    auto seg = decode_segment(val);
    if (!seg.ok()) return true;  // rebuild_space reports it
    bool good = true;
    if (after(*seg)) {
      ++checked;
      auto ok = seg->crc32c ? verdict(crc_matches(*this, files_, {*seg}, *seg->crc32c)) : std::optional<bool>(false);
      if (!ok) return false;
      good = *ok;
      if (good) keep(*seg);
    } else if (on_mem(*seg)) {
      good = whole_file(files_, *seg);
    }
    if (!good) {
      fix.del(std::string(k));
      ++pages_dropped;
    }
    return true;
  });
  RETURN_IF_ERROR(st);
  RETURN_IF_ERROR(failure);
  st = index_->scan("o", "p", [&](std::string_view k, std::string_view val) {
    auto m = decode_object(val);
    if (!m.ok()) return true;  // rebuild_space reports it
    bool suspect = false, gone = false;
    for (const auto& s : m->segments) {
      suspect |= unsynced(*m, s);
      gone |= on_mem(s) && !whole_file(files_, s);
    }
    if (suspect && !gone) {
      ++checked;
      auto ok = verdict(crc_matches(*this, files_, m->segments, m->crc32c));
      if (!ok) return false;
      gone = !*ok;
      if (!gone)
        for (const auto& s : m->segments)
          if (unsynced(*m, s)) keep(s);
    }
    if (!gone) return true;
    auto [b, key] = split_bk(k.substr(1));
    fix.del(std::string(k));
    if (m->state == PersistState::persisted) {
      ++objects_dropped;  // the under store has it: read through again
      return true;
    }
    fix.del(dirty_key(b, key));
    fix.del(parked_key(b, key));
    if (++lost <= 100)
      LOG_ERROR("{}/{}: its data did not survive the stop (durability \"none\" or a transient write): forgotten",
                b, key);
    return true;
  });
  RETURN_IF_ERROR(st);
  RETURN_IF_ERROR(failure);
  // Parts of multipart uploads (dirty): checked by their MD5.
  st = index_->scan("p", "q", [&](std::string_view k, std::string_view val) {
    auto p = decode_part(val);
    if (!p.ok()) return true;
    bool gone = on_mem(p->segment) && !whole_file(files_, p->segment);
    if (!gone && after(p->segment) && !sp->durable) {
      ++checked;
      auto ok = verdict(md5_matches(files_, p->segment, p->etag));
      if (!ok) return false;
      gone = !*ok;
      if (!gone) keep(p->segment);
    }
    if (!gone) return true;
    fix.del(std::string(k));
    if (++parts_lost <= 100)
      LOG_WARN("part {} of an upload did not survive the stop: forgotten (the client uploads it again)",
               p->number);
    return true;
  });
  RETURN_IF_ERROR(st);
  RETURN_IF_ERROR(failure);
  if (checked || pages_dropped || objects_dropped || lost || parts_lost)
    LOG_INFO("data that may not have survived the last stop (a power cut, a reboot): {} pages, objects and "
             "parts checked; {} pages and {} cached objects dropped (read through again), {} objects and {} "
             "parts lost",
             checked, pages_dropped, objects_dropped, lost, parts_lost);
  lost_at_open_ = lost;
  if (!fix.ops.empty()) RETURN_IF_ERROR(index_->write(fix, true));
  // What was kept is trusted from now on: make it durable first.
  open_writes_.put_back(std::move(kept));
  return write_sync_point();
}

}  // namespace reservoir::store
