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
  auto taken = open_writes_.take([this] { return seq_.load(); });
  std::vector<std::string> failed;
  Status st = sync_files(taken.files, &failed);
  if (!st.ok()) {
    open_writes_.put_back(std::move(failed));
    return st;
  }
  KvBatch b;
  b.put(kSyncPointKey, encode(SyncPoint{taken.below, durable_}));
  return index_->write(b, true);
}

void CacheStore::sync_point_loop() {
  std::unique_lock lk(ev_mu_);
  while (!ev_stop_) {
    ev_cv_.wait_for(lk, kSyncPointEvery);
    if (ev_stop_) break;
    lk.unlock();
    guarded("sync point", [this] {
      Status st = write_sync_point();
      if (!st.ok()) LOG_WARN("cannot write the sync point: {}", st.to_string());
    });
    lk.lock();
  }
}

Status CacheStore::close() {
  stop_evictor();
  return write_sync_point();
}

namespace {

// Whether the bytes of `segs` (in order) have the CRC32C `crc`; inline pieces
// are read from the index.
bool crc_matches(CacheStore& store, const ObjectFiles& files, const std::vector<Segment>& segs, uint32_t crc) {
  uint32_t got = 0;
  for (const auto& s : segs) {
    if (s.in_index) {
      auto data = store.read_inline(s);
      if (!data.ok()) return false;
      got = crc32c_extend(got, data->data(), data->size());
      continue;
    }
    Status st = read_whole_file(files.path(s.file_id, s.tier), s.size,
                                [&](const char* p, size_t n) { got = crc32c_extend(got, p, n); });
    if (!st.ok()) return false;
  }
  return got == crc;
}

bool md5_matches(const ObjectFiles& files, const Segment& s, const std::string& etag) {
  auto h = make_hasher(HashAlgo::md5);
  Status st = s.in_index ? ok_status()
                         : read_whole_file(files.path(s.file_id, s.tier), s.size,
                                           [&](const char* p, size_t n) { h->update(p, n); });
  return s.in_index || (st.ok() && hex_encode(h->digest()) == etag);
}

bool whole_file(const ObjectFiles& files, const Segment& s) {
  struct stat st {};
  return s.in_index || (::stat(files.path(s.file_id, s.tier).c_str(), &st) == 0 &&
                        static_cast<uint64_t>(st.st_size) == s.size);
}

}  // namespace

Status CacheStore::check_after_crash() {
  auto v = index_->get(kSyncPointKey);
  if (!v.ok()) return v.status();
  if (!v.value()) return write_sync_point();  // a new store (or one from before sync points)
  auto sp = decode_sync_point(*v.value());
  if (!sp.ok()) return sp.status();
  auto on_mem = [&](const Segment& s) {
    return !s.in_index && s.tier < volatile_tiers_.size() && volatile_tiers_[s.tier];
  };
  auto after = [&](const Segment& s) { return !s.in_index && s.file_id >= sp->below; };

  KvBatch fix;
  uint64_t checked = 0, pages_dropped = 0, objects_dropped = 0, lost = 0, parts_lost = 0;
  // Pages are never fsynced: those written since the sync point are checked
  // against their CRC32C, those on a mem tier by their size.
  Status st = index_->scan("g", "h", [&](std::string_view k, std::string_view val) {
    auto seg = decode_segment(val);
    if (!seg.ok() || !(after(*seg) || on_mem(*seg))) return true;
    ++checked;
    bool good = after(*seg) ? seg->crc32c && crc_matches(*this, files_, {*seg}, *seg->crc32c) : whole_file(files_, *seg);
    if (!good) {
      fix.del(std::string(k));
      ++pages_dropped;
    }
    return true;
  });
  RETURN_IF_ERROR(st);
  // Objects: data written since the sync point without an fsync (durability
  // "none", transient writes), or on a mem tier.
  st = index_->scan("o", "p", [&](std::string_view k, std::string_view val) {
    auto m = decode_object(val);
    if (!m.ok()) return true;  // rebuild_space reports it
    bool suspect = false;
    for (const auto& s : m->segments)
      suspect |= on_mem(s) || (after(s) && (!sp->durable || m->state == PersistState::transient));
    if (!suspect) return true;
    ++checked;
    if (crc_matches(*this, files_, m->segments, m->crc32c)) return true;
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
  // Parts of multipart uploads (dirty): checked by their MD5.
  st = index_->scan("p", "q", [&](std::string_view k, std::string_view val) {
    auto p = decode_part(val);
    if (!p.ok() || !(on_mem(p->segment) || (after(p->segment) && !sp->durable))) return true;
    ++checked;
    if (md5_matches(files_, p->segment, p->etag)) return true;
    fix.del(std::string(k));
    ++parts_lost;
    return true;
  });
  RETURN_IF_ERROR(st);
  if (checked)
    LOG_INFO("start after an unclean stop: {} pages, objects and parts written since the last sync point "
             "checked; {} pages and {} cached objects dropped (read through again), {} objects and {} parts "
             "lost",
             checked, pages_dropped, objects_dropped, lost, parts_lost);
  lost_at_open_ = lost;
  if (!fix.ops.empty()) RETURN_IF_ERROR(index_->write(fix, true));
  // What was kept is trusted from now on: make it durable first.
  return write_sync_point();
}

}  // namespace reservoir::store
