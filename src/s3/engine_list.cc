// Listing: merges the under store's listing with the cache's records, in key
// order, one bounded page at a time. Cache records win over the under store
// (they are newer); tombstones hide keys until the under store agrees.
#include <fmt/format.h>

#include "s3/engine.h"
#include "s3/errors.h"
#include "s3/list_cache.h"

namespace reservoir::s3 {

namespace {

constexpr size_t kBatch = 1000;

// Pulls cache records of one bucket in key order, a batch at a time.
class CacheCursor {
 public:
  CacheCursor(store::CacheStore& s, std::string bucket, std::string prefix, std::string after)
      : s_(s), bucket_(std::move(bucket)), prefix_(std::move(prefix)), after_(std::move(after)) {}
  // The next record, or nullptr at the end.
  Result<const std::pair<std::string, store::ObjectMeta>*> peek() {
    if (pos_ < buf_.size()) return &buf_[pos_];
    if (done_) return static_cast<const std::pair<std::string, store::ObjectMeta>*>(nullptr);
    buf_.clear();
    pos_ = 0;
    Status st = s_.scan_objects(bucket_, prefix_, after_, [&](const std::string& k, const store::ObjectMeta& m) {
      buf_.emplace_back(k, m);
      return buf_.size() < kBatch;
    });
    if (!st.ok()) return st;
    ++reads_;
    if (buf_.size() < kBatch) done_ = true;
    if (!buf_.empty()) after_ = buf_.back().first;
    return peek();
  }
  void next() { ++pos_; }
  void skip_past(const std::string& k) {
    while (pos_ < buf_.size() && buf_[pos_].first <= k) ++pos_;
    if (pos_ == buf_.size() && after_ < k) after_ = k;
  }
  // Batches read so far.
  uint64_t reads() const { return reads_; }

 private:
  store::CacheStore& s_;
  std::string bucket_, prefix_, after_;
  std::vector<std::pair<std::string, store::ObjectMeta>> buf_;
  size_t pos_ = 0;
  bool done_ = false;
  uint64_t reads_ = 0;
};

// Pulls the under store's listing in pages; keys relative to the bucket.
// Pages come from the list cache when the mount's metadata_ttl allows.
class UfsCursor {
 public:
  UfsCursor(ns::Mount& m, ListCache& cache, std::string base, std::string prefix, std::string after)
      : m_(m), cache_(cache), base_(std::move(base)), prefix_(std::move(prefix)), after_(std::move(after)),
        passed_(after_) {}
  Result<const ufs::ObjectInfo*> peek() {
    if (pos_ < page_.entries.size()) return &page_.entries[pos_];
    if (done_) return static_cast<const ufs::ObjectInfo*>(nullptr);
    std::string from = after_.empty() ? std::string() : base_ + after_;
    const auto& ttl = m_.config.metadata_ttl;
    bool cacheable = ttl && ttl->count() > 0;
    uint64_t gen = m_.generation.load();
    std::optional<ufs::ListPage> hit;
    if (cacheable) hit = cache_.get(m_.id, gen, base_ + prefix_, from, *ttl);
    if (hit) {
      page_ = std::move(*hit);
    } else {
      auto p = m_.store->list(base_ + prefix_, from, kBatch);
      if (!p.ok()) return p.status();
      page_ = std::move(p.value());
      if (cacheable) cache_.put(m_.id, gen, base_ + prefix_, from, page_);
    }
    pos_ = 0;
    // Only names under the base (an under store that answers more is ignored).
    std::erase_if(page_.entries, [&](const ufs::ObjectInfo& e) { return e.path.compare(0, base_.size(), base_) != 0; });
    for (auto& e : page_.entries) e.path = e.path.substr(base_.size());
    if (!page_.truncated) done_ = true;
    if (!page_.entries.empty()) after_ = page_.entries.back().path;
    else done_ = true;
    return peek();
  }
  void next() { passed_ = page_.entries[pos_++].path; }
  void skip_past(const std::string& k) {
    while (pos_ < page_.entries.size() && page_.entries[pos_].path <= k) ++pos_;
    if (pos_ == page_.entries.size() && after_ < k) after_ = k;
    if (passed_ < k) passed_ = k;
  }
  // Forgets the rest of the page read (or that the listing had ended): the
  // next peek lists again from the last key passed.
  void reread() {
    if (pos_ == page_.entries.size() && !done_) return;  // the next peek lists anyway
    page_.entries.clear();
    pos_ = 0;
    done_ = false;
    after_ = passed_;
  }

 private:
  ns::Mount& m_;
  ListCache& cache_;
  std::string base_, prefix_, after_;
  std::string passed_;  // the last key consumed or skipped
  ufs::ListPage page_;
  size_t pos_ = 0;
  bool done_ = false;
};

}  // namespace

Result<ListResult> Engine::list(const std::string& bucket, const ListRequest& req) {
  RETURN_IF_ERROR(bucket_exists(bucket));
  auto where = ns_.resolve_bucket(bucket);
  if (!where.ok()) return where.status();
  std::string base = where->mount->is_root() ? bucket + "/" : "";
  // Resuming after a common prefix skips every key under it (keys are UTF-8,
  // so none has a 0xff byte).
  std::string after = req.start_after;
  if (!req.delimiter.empty() && after.size() > req.prefix.size() && after.compare(0, req.prefix.size(), req.prefix) == 0 &&
      after.size() >= req.delimiter.size() &&
      after.compare(after.size() - req.delimiter.size(), req.delimiter.size(), req.delimiter) == 0 &&
      after.find(req.delimiter, req.prefix.size()) == after.size() - req.delimiter.size())
    after += std::string(1, '\xff');
  CacheCursor cache(store_, bucket, req.prefix, after);
  UfsCursor under(*where->mount, *list_cache_, base, req.prefix, after);
  ListResult out;
  size_t count = 0;
  std::string last_prefix;
  uint64_t cache_reads = 0;
  while (true) {
    auto c = cache.peek();
    if (!c.ok()) return c.status();
    // The cache's records must be read before the under store's page they
    // are merged with: a delete's tombstone is dropped only after the under
    // store lost the key, so a page read before a batch of records could
    // still show a key whose tombstone that batch no longer has (and miss
    // one whose record was persisted and forgotten in between). After a new
    // batch, the rest of the page is listed again.
    if (cache.reads() != cache_reads) {
      cache_reads = cache.reads();
      under.reread();
    }
    auto u = under.peek();
    if (!u.ok()) return u.status();
    if (!*c && !*u) break;
    ListEntry e;
    bool present;
    if (*c && (!*u || (*c)->first <= (*u)->path)) {
      const auto& [k, m] = **c;
      bool same = *u && (*u)->path == k;
      present = !m.deleted && !(m.expires_at_ms && m.expires_at_ms <= store::now_ms());
      e = {k, m.size, m.etag, m.mtime_ms};
      cache.next();
      if (same) under.next();
    } else {
      const auto& i = **u;
      present = true;
      e = {i.path, i.size, i.etag, i.mtime_ms};
      under.next();
    }
    if (!present || e.key <= after) continue;
    if (!req.delimiter.empty()) {
      size_t d = e.key.find(req.delimiter, req.prefix.size());
      if (d != std::string::npos) {
        std::string cp = e.key.substr(0, d + req.delimiter.size());
        if (cp == last_prefix) continue;
        if (count == static_cast<size_t>(req.max_keys)) {
          out.truncated = true;
          break;
        }
        out.common_prefixes.push_back(cp);
        last_prefix = cp;
        out.next_marker = cp;
        ++count;
        // Jump both cursors past everything under this prefix (keys are
        // UTF-8, so no key byte is 0xff).
        cache.skip_past(cp + std::string(1, '\xff'));
        under.skip_past(cp + std::string(1, '\xff'));
        continue;
      }
    }
    if (count == static_cast<size_t>(req.max_keys)) {
      out.truncated = true;
      break;
    }
    out.next_marker = e.key;
    out.contents.push_back(std::move(e));
    ++count;
  }
  if (!out.truncated) out.next_marker.clear();
  return out;
}

}  // namespace reservoir::s3
