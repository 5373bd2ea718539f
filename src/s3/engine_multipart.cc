// Multipart uploads: parts are data files; completion writes a manifest (the
// object's segment list) instead of copying bytes.
#include <unistd.h>

#include <random>
#include <set>

#include <fmt/format.h>

#include "common/hash.h"
#include "s3/engine.h"
#include "s3/errors.h"

namespace reservoir::s3 {

namespace {

constexpr uint64_t kMinPartSize = 5ull << 20;

std::string new_upload_id() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  return fmt::format("{:016x}{:016x}", rng(), rng());
}

Status no_such_upload() { return s3_error("NoSuchUpload"); }

}  // namespace

Result<std::string> Engine::create_upload(const std::string& bucket, const std::string& key, const ObjectAttrs& attrs) {
  RETURN_IF_ERROR(check_write(bucket, key));
  store::UploadMeta u;
  u.upload_id = new_upload_id();
  u.bucket = bucket;
  u.key = key;
  u.initiated_ms = store::now_ms();
  u.content_type = attrs.content_type;
  u.headers = attrs.headers;
  u.user_meta = attrs.user_meta;
  u.tags = attrs.tags;
  RETURN_IF_ERROR(store_.put_upload(u));
  return u.upload_id;
}

Result<store::UploadMeta> Engine::get_upload(const std::string& bucket, const std::string& key,
                                             const std::string& upload_id) {
  auto u = store_.get_upload(upload_id);
  if (!u.ok()) return u.status();
  if (!u.value() || u.value()->bucket != bucket || u.value()->key != key) return no_such_upload();
  return *u.value();
}

Result<std::string> Engine::put_part(const std::string& upload_id, int number, std::unique_ptr<store::FileWriter> file) {
  store::PartMeta p;
  p.number = number;
  p.etag = hex_encode(file->md5());
  p.mtime_ms = store::now_ms();
  RETURN_IF_ERROR(file->commit(store_.durable()));
  p.segment = file->segment();
  // The upload may have been completed or aborted while the part streamed in.
  auto held = uploads_.lock("", upload_id, false);
  auto u = store_.get_upload(upload_id);
  Status st = !u.ok() ? u.status() : !u.value() ? no_such_upload() : store_.put_part(upload_id, p);
  if (!st.ok()) {
    store_.remove_data(p.segment);  // no record names it
    return st;
  }
  return p.etag;
}

Result<store::ObjectMeta> Engine::complete_upload(const std::string& bucket, const std::string& key,
                                                  const std::string& upload_id, const std::vector<CompletedPart>& parts) {
  // No part of this upload changes, and no abort drops it, until the object
  // that takes its part files is committed and the upload is gone.
  auto held = uploads_.lock("", upload_id, false);
  auto up = get_upload(bucket, key, upload_id);
  if (!up.ok()) return up.status();
  auto stored = store_.list_parts(upload_id);
  if (!stored.ok()) return stored.status();
  std::map<int, store::PartMeta> by_number;
  for (auto& p : *stored) by_number[p.number] = p;
  store::ObjectMeta m;
  std::string md5s;
  int prev = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const auto& want = parts[i];
    if (want.number <= prev) return s3_error("InvalidPartOrder");
    prev = want.number;
    auto it = by_number.find(want.number);
    if (it == by_number.end() || it->second.etag != want.etag) return s3_error("InvalidPart");
    const auto& p = it->second;
    if (i + 1 < parts.size() && p.segment.size < kMinPartSize)
      return s3_error("EntityTooSmall", fmt::format("Part {} is smaller than the minimum of 5 MiB", want.number));
    for (size_t k = 0; k + 1 < p.etag.size(); k += 2) md5s += static_cast<char>(std::stoi(p.etag.substr(k, 2), nullptr, 16));
    if (p.segment.size > 0) m.segments.push_back(p.segment);
    m.part_sizes.push_back(p.segment.size);
    m.size += p.segment.size;
  }
  m.etag = fmt::format("{}-{}", hex_encode(md5_raw(md5s)), parts.size());
  m.content_type = up->content_type.empty() ? "binary/octet-stream" : up->content_type;
  m.headers = up->headers;
  m.user_meta = up->user_meta;
  m.tags = up->tags;
  m.mtime_ms = store::now_ms();
  // CRC32C of the whole object, from the part files (they are local).
  uint32_t crc = 0;
  {
    auto h = store_.pin(m);
    if (!h.ok()) return h.status();
    std::vector<char> buf(1 << 20);
    uint64_t off = 0;
    while (off < m.size) {
      auto n = h->pread(off, buf.data(), buf.size());
      if (!n.ok()) return n.status();
      if (*n == 0) return io_error("short part data");
      crc = crc32c_extend(crc, buf.data(), *n);
      off += *n;
    }
  }
  m.crc32c = crc;
  std::set<uint64_t> keep;
  for (auto& s : m.segments) keep.insert(s.file_id);
  auto where = ns_.resolve(bucket, key);
  if (!where.ok()) return where.status();
  // The upload's records go in the batch of the object's record: a crash
  // never leaves both, so an abort (or a part sent again) can never remove
  // files the object holds.
  store::KvBatch gone;
  auto all = store_.upload_removal(upload_id, gone);
  if (!all.ok()) return all.status();
  auto r = commit_write(bucket, key, where.value(), std::move(m), PutConditions{}, nullptr, std::move(gone));
  if (!r.ok()) return r.status();
  for (auto& p : *all)
    if (!keep.count(p.segment.file_id)) store_.remove_data(p.segment);  // parts left out of the object
  return r;
}

Status Engine::abort_upload(const std::string& bucket, const std::string& key, const std::string& upload_id) {
  auto held = uploads_.lock("", upload_id, false);
  auto up = get_upload(bucket, key, upload_id);
  if (!up.ok()) return up.status();
  return store_.drop_upload(upload_id, {});
}

Result<std::vector<PartInfo>> Engine::list_parts(const std::string& upload_id) {
  auto parts = store_.list_parts(upload_id);
  if (!parts.ok()) return parts.status();
  std::vector<PartInfo> out;
  for (auto& p : *parts) out.push_back({p.number, p.segment.size, p.etag, p.mtime_ms});
  return out;
}

Result<std::vector<store::UploadMeta>> Engine::list_uploads(const std::string& bucket) {
  RETURN_IF_ERROR(bucket_exists(bucket));
  return store_.list_uploads(bucket);
}

}  // namespace reservoir::s3
