// Reads: the cached record, checked against the under store when the
// mount's metadata_ttl says so, and objects read through by page.
#include <fmt/format.h>

#include "common/log.h"
#include "s3/engine.h"
#include "s3/errors.h"
#include "s3/names.h"

namespace reservoir::s3 {

using store::ObjectMeta;
using store::PersistState;

bool expired(const ObjectMeta& m, const ns::EffectivePolicy& p) {
  int64_t now = store::now_ms();
  if (m.expires_at_ms && m.expires_at_ms <= now) return true;
  return p.ttl && p.ttl_action == TtlAction::del && m.mtime_ms + p.ttl->count() <= now;
}

namespace {

Status no_such_key() { return s3_error("NoSuchKey"); }

// Only data the under store holds can change behind Reservoir's back.
bool needs_check(const ObjectMeta& m, const ns::EffectivePolicy& p) {
  if (m.state != PersistState::persisted || !p.metadata_ttl) return false;
  return store::now_ms() - m.checked_ms >= p.metadata_ttl->count();
}

// The fingerprint: size and the under store's ETag. For an object written
// through Reservoir the under store's ETag is learnt at the first check
// (multipart uploads to S3 get an ETag of their own).
bool same_object(const ObjectMeta& m, const ufs::ObjectInfo& info) {
  if (m.size != info.size) return false;
  const std::string& known = m.page_size ? m.etag : m.ufs_etag;
  if (!known.empty() && !info.etag.empty() && known != info.etag) return false;
  if (m.page_size && m.mtime_ms && info.mtime_ms && m.mtime_ms != info.mtime_ms) return false;
  return true;
}

ObjectMeta from_info(const ufs::ObjectInfo& info, uint64_t page_size) {
  ObjectMeta m;
  m.size = info.size;
  m.etag = info.etag;
  m.content_type = info.content_type.empty() ? "binary/octet-stream" : info.content_type;
  m.headers = info.headers;
  m.user_meta = info.user_meta;
  m.tags = info.tags;
  m.mtime_ms = info.mtime_ms;
  m.state = PersistState::persisted;
  m.page_size = page_size;
  m.checked_ms = store::now_ms();
  m.ufs_etag = info.etag;
  return m;
}

// Marks an object as being read for as long as a handle holds it.
struct ReaderToken {
  store::CacheSpace* space;
  std::string bucket, key;
  ReaderToken(store::CacheSpace* s, std::string b, std::string k) : space(s), bucket(std::move(b)), key(std::move(k)) {
    space->add_reader(bucket, key);
  }
  ~ReaderToken() { space->remove_reader(bucket, key); }
};

}  // namespace

void Engine::expire(const std::string& bucket, const std::string& key, const ObjectMeta& m) {
  // Past its TTL (action delete): gone for readers now, everywhere soon. Only
  // this version: a write that replaced it meanwhile stays.
  auto where = ns_.resolve(bucket, key);
  auto held = writes_.lock(bucket, key);
  if (m.state == PersistState::transient || !where.ok() ||
      !where->mount->store->check_path(where->ufs_path).ok()) {
    (void)store_.erase_version(bucket, key, m.version, /*clean_only=*/false);
    return;
  }
  // A tombstone the persister takes to the under store (in every write mode:
  // removing it there first could remove a newer write of the key).
  (void)commit_tombstone(bucket, key, [&](const std::optional<ObjectMeta>& cur) -> Status {
    if (!cur || cur->deleted || cur->version != m.version) return s3_error("OperationAborted");
    return ok_status();
  });
}

Result<std::optional<ObjectMeta>> Engine::current(const std::string& bucket, const std::string& key,
                                                  const ns::Resolved& where) {
  ufs::UnderStore& u = *where.mount->store;
  for (int attempt = 0; attempt < 4; ++attempt) {
    auto cur = store_.get(bucket, key);
    if (!cur.ok()) return cur.status();
    if (cur.value()) {
      const ObjectMeta& m = *cur.value();
      if (m.deleted) return std::optional<ObjectMeta>();
      if (expired(m, where.policy)) {
        expire(bucket, key, m);
        return std::optional<ObjectMeta>();
      }
      if (m.segments.empty()) store_.touch_record(bucket, key);  // metadata only: counts as used
      if (!needs_check(m, where.policy)) return cur.value();
      auto info = u.head(where.ufs_path);
      if (!info.ok() && info.status().code() != Code::not_found) {
        // Never serve past the TTL what cannot be confirmed.
        if (info.status().retryable())
          return s3_error("ServiceUnavailable", "The under store cannot confirm the cached copy: " +
                                                    info.status().message());
        return info.status();
      }
      if (info.ok() && same_object(m, *info)) {
        (void)store_.set_checked(bucket, key, m.version, store::now_ms(), m.page_size ? "" : info->etag);
        return cur.value();
      }
      // Changed or removed behind Reservoir's back: the cached copy is stale.
      auto gone = store_.erase_version(bucket, key, m.version);
      if (!gone.ok()) return gone.status();
      if (*gone) {
        ++stale_drops_;
        LOG_INFO("{}/{} changed in the under store; dropped the cached copy", bucket, key);
      }
      continue;
    }
    if (!u.check_path(where.ufs_path).ok()) return std::optional<ObjectMeta>();
    uint64_t seen = writes_.changes(bucket, key);
    auto info = u.head(where.ufs_path);
    if (!info.ok()) {
      // (Only "absent" is absent: a backend's 400, an expired token say, is
      // an error to report, not a missing key.)
      if (info.status().code() == Code::not_found) return std::optional<ObjectMeta>();
      return info.status();
    }
    // Cache the under store's answer (metadata only; pages come on demand).
    auto ins = record_fill(bucket, key, from_info(*info, config_.cache.page_size), seen);
    if (!ins.ok()) return ins.status();
  }
  return unavailable("the object keeps changing; retry");
}

Result<bool> Engine::record_fill(const std::string& bucket, const std::string& key, const ObjectMeta& m,
                                 uint64_t seen) {
  // A write of the key that ran while the under store was asked may have
  // changed or removed what it answered (absent -> absent looks unchanged to
  // commit_if_absent): then the answer is not recorded.
  auto held = writes_.lock(bucket, key, /*change=*/false);
  if (writes_.changes(bucket, key) != seen) return false;
  return store_.record_if_absent(bucket, key, m);
}

Status Engine::open_cold(const std::string& bucket, const std::string& key, const ns::Resolved& where,
                         std::pair<uint64_t, uint64_t> span, Adopted* adopted) {
  ufs::UnderStore& u = *where.mount->store;
  if (!u.check_path(where.ufs_path).ok()) return no_such_key();
  uint64_t ps = config_.cache.page_size;
  uint64_t first_page = span.first / ps;
  uint64_t pages = reads_->max_run(where.policy.read_type);
  if (span.second != UINT64_MAX) pages = std::min(pages, span.second / ps - first_page + 1);
  uint64_t length = pages * ps;
  uint64_t seen = writes_.changes(bucket, key);
  auto o = u.open_read(where.ufs_path, first_page * ps, length);
  if (!o.ok()) {
    if (o.status().code() == Code::not_found) return no_such_key();
    return o.status();
  }
  ObjectMeta fresh = from_info(o->info, ps);
  auto ins = record_fill(bucket, key, fresh, seen);
  if (!ins.ok()) return ins.status();
  auto cur = store_.get(bucket, key);
  if (!cur.ok()) return cur.status();
  const auto& m = cur.value();
  // Only bytes of the very version recorded may fill its pages.
  if (m && !m->deleted && m->page_size == ps && m->size == o->info.size && m->etag == o->info.etag &&
      first_page * ps < m->size) {
    PagedObject obj{bucket, key, m->version, m->size, ps, &u, where.ufs_path, where.policy.read_type, m->etag};
    adopted->version = m->version;
    adopted->run = reads_->adopt(obj, first_page, std::move(o->src), std::min(length, m->size - first_page * ps));
  }
  return ok_status();
}

Result<store::ReadHandle> Engine::open_object(const std::string& bucket, const std::string& key,
                                              std::optional<std::pair<uint64_t, uint64_t>> span) {
  RETURN_IF_ERROR(validate_key(key));
  RETURN_IF_ERROR(bucket_exists(bucket));
  auto where = ns_.resolve(bucket, key);
  if (!where.ok()) return where.status();
  Adopted adopted;
  if (span) {
    auto cur = store_.get(bucket, key);
    if (!cur.ok()) return cur.status();
    if (!cur.value()) RETURN_IF_ERROR(open_cold(bucket, key, *where, *span, &adopted));
  }
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto m = current(bucket, key, *where);
    if (!m.ok()) return m.status();
    if (!m.value()) return no_such_key();
    auto token = std::make_shared<ReaderToken>(&store_.space(), bucket, key);
    if (m.value()->page_size) {
      PagedObject o{bucket, key, m.value()->version, m.value()->size, m.value()->page_size,
                    where->mount->store.get(), where->ufs_path, where->policy.read_type, m.value()->etag};
      ReadThrough::Run held;
      if (adopted.version == o.version) held = std::move(adopted.run);
      store::ReadHandle h(std::move(*m.value()), reads_->open(o, std::move(held)));
      h.hold(std::move(token));
      return h;
    }
    auto h = store_.open(bucket, key);
    if (!h.ok()) {
      if (h.status().code() == Code::not_found) continue;  // changed between the two look-ups
      // Data of a clean object lost (e.g. a crash before the OS wrote it):
      // drop the record and read it through again.
      if (m.value()->state == PersistState::persisted) {
        LOG_WARN("{}/{}: {}; reading it from the under store again", bucket, key, h.status().message());
        (void)store_.erase_version(bucket, key, m.value()->version);
        continue;
      }
      return h.status();
    }
    reads_->count_object_hit();
    store_.space().touch(bucket, key, -1);
    const auto& segs = h->meta().segments;
    if (where->policy.read_type == ReadType::promote && !segs.empty() && segs.front().tier > 0 &&
        h->meta().state == PersistState::persisted) {
      uint64_t bytes = 0;
      for (auto& s : segs) bytes += s.size;
      reads_->promote({bucket, key, h->meta().version, -1, segs.front().tier, bytes});
    }
    h->hold(std::move(token));
    return h;
  }
  return unavailable("the object keeps changing; retry");
}

std::optional<store::ReadHandle> Engine::open_hot(const std::string& bucket, const std::string& key) {
  auto e = store_.hot(bucket, key);
  if (!e || e->meta.deleted || !validate_key(key).ok()) return std::nullopt;
  auto where = ns_.resolve(bucket, key);
  if (!where.ok() || expired(e->meta, where->policy) || needs_check(e->meta, where->policy)) return std::nullopt;
  store_.space().touch(bucket, key, -1);
  if (e->data.empty() && e->meta.segments.empty()) store_.touch_record(bucket, key);  // an empty object: metadata only
  reads_->count_object_hit();
  std::vector<store::ReadHandle::Piece> pieces;
  store::ObjectMeta meta = e->meta;
  if (!e->data.empty()) {
    store::ReadHandle::Piece p;
    p.shared = std::shared_ptr<const std::string>(e, &e->data);  // shares the entry, no copy
    pieces.push_back(std::move(p));
    if (meta.page_size) {  // an object read through, whole in one page
      meta.segments = {store::Segment{0, meta.size, true, 0, std::nullopt}};
      meta.page_size = 0;
    }
  }
  return store::ReadHandle(std::move(meta), std::move(pieces));
}

Result<ObjectMeta> Engine::head_object(const std::string& bucket, const std::string& key) {
  RETURN_IF_ERROR(validate_key(key));
  RETURN_IF_ERROR(bucket_exists(bucket));
  auto where = ns_.resolve(bucket, key);
  if (!where.ok()) return where.status();
  auto m = current(bucket, key, *where);
  if (!m.ok()) return m.status();
  if (!m.value()) return no_such_key();
  return std::move(*m.value());
}

}  // namespace reservoir::s3
