// The under store (UFS): the object store Reservoir caches and persists to.
//
// Paths are '/'-separated object names relative to the store's root
// ("bucket/key" for a root mount). All calls are blocking and thread-safe;
// callers run them off the network threads. Errors are values whose code says
// what to do next: unavailable -> retry later; permission_denied,
// invalid_argument, failed_precondition -> park; not_found -> absent.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"

namespace reservoir::ufs {

// A pull-based byte stream. read() returns 0 at the end.
class Source {
 public:
  virtual ~Source() = default;
  virtual Result<size_t> read(char* buf, size_t n) = 0;
};

struct ObjectInfo {
  std::string path;
  uint64_t size = 0;
  std::string etag;           // without quotes
  int64_t mtime_ms = 0;
  std::string content_type;
  std::map<std::string, std::string> headers;    // cache-control, content-disposition, ...
  std::map<std::string, std::string> user_meta;  // x-amz-meta-* without the prefix
  std::vector<std::pair<std::string, std::string>> tags;
};

struct ListPage {
  std::vector<ObjectInfo> entries;  // in byte-wise key order
  bool truncated = false;
};

// An object opened for reading: what it is, and a stream of the bytes asked for.
struct OpenedObject {
  ObjectInfo info;
  std::unique_ptr<Source> src;  // [offset, offset+length) clipped to the object; empty past its end
};

class UnderStore {
 public:
  virtual ~UnderStore() = default;
  virtual std::string uri() const = 0;

  // Checks that `path` can be stored at all (e.g. a local directory cannot
  // hold a '..' segment). invalid_argument says why.
  virtual Status check_path(const std::string& path) const = 0;
  // Checks that an object of `size` bytes can be stored at `path`.
  virtual Status check_put(const std::string& path, uint64_t size) const {
    (void)size;
    return check_path(path);
  }
  virtual Result<ObjectInfo> head(const std::string& path) = 0;
  // Streams [offset, offset+length) of the object; length UINT64_MAX = to the end.
  virtual Result<std::unique_ptr<Source>> get(const std::string& path, uint64_t offset, uint64_t length) = 0;
  // The object's metadata and a stream of [offset, offset+length), in one
  // request where the store allows it (the default asks head() then get()).
  virtual Result<OpenedObject> open_read(const std::string& path, uint64_t offset, uint64_t length);
  // Stores `size` bytes from `src` atomically: readers see the old or the new object.
  virtual Status put(const std::string& path, Source& src, uint64_t size, const ObjectInfo& meta) = 0;
  // Removing an absent object succeeds.
  virtual Status remove(const std::string& path) = 0;
  // Objects whose path starts with `prefix`, strictly after `start_after`, in order.
  virtual Result<ListPage> list(const std::string& prefix, const std::string& start_after, size_t max) = 0;
  // Directory-like containers (buckets of a root mount).
  virtual Status make_dir(const std::string& path) = 0;
  virtual Status remove_dir(const std::string& path) = 0;
  virtual Result<bool> dir_exists(const std::string& path) = 0;
  virtual Result<std::vector<std::string>> list_dirs() = 0;  // top-level containers
};

// Opens a store from its URI: file:///abs/dir, file://./relative, mem://name,
// s3://bucket/prefix (with the mount's endpoint, region and credentials).
Result<std::unique_ptr<UnderStore>> open_under_store(const std::string& uri);
Result<std::unique_ptr<UnderStore>> open_under_store(const MountConfig& mount);

// A Source over an in-memory string (tests, small bodies).
class StringSource : public Source {
 public:
  explicit StringSource(std::string data) : data_(std::move(data)) {}
  Result<size_t> read(char* buf, size_t n) override;

 private:
  std::string data_;
  size_t pos_ = 0;
};

// Reads a whole Source into a string (tests and small objects).
Result<std::string> read_all(Source& src);

}  // namespace reservoir::ufs
