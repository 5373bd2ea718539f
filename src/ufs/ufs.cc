#include "ufs/ufs.h"

#include <cstring>

#include "ufs/local_ufs.h"
#include "ufs/memory_ufs.h"
#include "ufs/s3_ufs.h"

namespace reservoir::ufs {

Result<size_t> StringSource::read(char* buf, size_t n) {
  size_t k = std::min(n, data_.size() - pos_);
  std::memcpy(buf, data_.data() + pos_, k);
  pos_ += k;
  return k;
}

Result<OpenedObject> UnderStore::open_read(const std::string& path, uint64_t offset, uint64_t length) {
  auto info = head(path);
  if (!info.ok()) return info.status();
  OpenedObject o;
  o.info = std::move(info.value());
  if (offset >= o.info.size) {
    o.src = std::make_unique<StringSource>("");
    return o;
  }
  auto src = get(path, offset, length);
  if (!src.ok()) return src.status();
  o.src = std::move(src.value());
  return o;
}

Result<std::string> read_all(Source& src) {
  std::string out;
  char buf[65536];
  for (;;) {
    auto r = src.read(buf, sizeof buf);
    if (!r.ok()) return r.status();
    if (*r == 0) break;
    out.append(buf, *r);
  }
  return out;
}

Result<std::unique_ptr<UnderStore>> open_under_store(const std::string& uri) {
  if (uri.rfind("file://", 0) == 0) {
    std::string dir = uri.substr(7);
    if (dir.empty()) return invalid_argument("file:// URI needs a directory: " + uri);
    return make_local_ufs(dir);
  }
  if (uri.rfind("mem://", 0) == 0) {
    return std::unique_ptr<UnderStore>(std::make_unique<MemoryUfs>(uri));
  }
  if (uri.rfind("s3://", 0) == 0) {
    MountConfig m;
    m.ufs = uri;
    return open_under_store(m);
  }
  return invalid_argument("unknown under-store URI scheme (use file:// or mem://): " + uri);
}

Result<std::unique_ptr<UnderStore>> open_under_store(const MountConfig& m) {
  if (m.ufs.rfind("s3://", 0) != 0) return open_under_store(m.ufs);
  S3Options o;
  RETURN_IF_ERROR(parse_s3_uri(m.ufs, o));
  o.endpoint = m.endpoint;
  o.region = m.region;
  // Virtual-hosted style on AWS, unless the bucket name has a dot: AWS's
  // certificate (*.s3.<region>.amazonaws.com) covers one label only, so the
  // SDKs use path style for such names, and so does this.
  o.path_style = m.path_style ? *m.path_style : !m.endpoint.empty() || o.bucket.find('.') != std::string::npos;
  o.access_key = m.access_key;
  o.secret_key = m.secret_key;
  o.multipart_threshold = m.multipart_threshold;
  o.part_size = m.part_size;
  o.part_concurrency = std::max(1, std::min(8, m.persist.concurrency));
  RETURN_IF_ERROR(resolve_credentials(o));
  return make_s3_ufs(std::move(o));
}

}  // namespace reservoir::ufs
