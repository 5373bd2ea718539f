// Records kept in the index: object metadata, multipart uploads and parts,
// buckets. Encoded as MessagePack (nlohmann::json) so fields can be added.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace reservoir::store {

enum class PersistState : uint8_t { dirty, persisting, persisted, parked, transient };
const char* persist_state_name(PersistState s);

// A run of bytes in one data file of the cache.
struct Segment {
  uint64_t file_id = 0;
  uint64_t size = 0;
  bool in_index = false;  // small data kept in the index (key "i<id>"), not in a file
  uint8_t tier = 0;       // cache tier holding the data (0 = the fastest)
  // CRC32C of the bytes, kept for pages read through (whose files are not
  // fsynced): a start after a power cut checks the newest pages against it.
  std::optional<uint32_t> crc32c;
};
std::string encode(const Segment& s);
Result<Segment> decode_segment(std::string_view bytes);
// The same data in the same places (ids, sizes, tiers).
bool same_data(const std::vector<Segment>& a, const std::vector<Segment>& b);

using Tags = std::vector<std::pair<std::string, std::string>>;

struct ObjectMeta {
  uint64_t version = 0;        // per-process monotonic, unique across keys
  bool deleted = false;        // a tombstone: deleted, the under store not yet told
  bool cached = true;          // the bytes are in the cache (segments valid)
  uint64_t size = 0;
  std::string etag;            // without quotes: md5 hex, or md5-of-md5s "-N"
  uint32_t crc32c = 0;         // of the whole content
  std::string content_type;
  std::map<std::string, std::string> headers;    // cache-control, content-disposition, ...
  std::map<std::string, std::string> user_meta;  // x-amz-meta-* (lower-case, no prefix)
  std::map<std::string, std::string> checksums;  // "crc32" -> base64, as sent by the client
  Tags tags;
  int64_t mtime_ms = 0;
  PersistState state = PersistState::dirty;
  std::string park_reason;
  std::vector<Segment> segments;
  std::vector<uint64_t> part_sizes;  // multipart objects: size of each part
  int64_t expires_at_ms = 0;         // TTL; 0 = none
  // Objects read through from the under store are cached by page: the data
  // is in page records, not in `segments`. 0 = whole-object segments.
  uint64_t page_size = 0;
  int64_t checked_ms = 0;            // last time the under store confirmed this version
  std::string ufs_etag;              // the under store's ETag of this version, once known
};

std::string encode(const ObjectMeta& m);
Result<ObjectMeta> decode_object(std::string_view bytes);

struct UploadMeta {
  std::string upload_id;
  std::string bucket;
  std::string key;
  int64_t initiated_ms = 0;
  std::string content_type;
  std::map<std::string, std::string> headers;
  std::map<std::string, std::string> user_meta;
  Tags tags;
};
std::string encode(const UploadMeta& m);
Result<UploadMeta> decode_upload(std::string_view bytes);

struct PartMeta {
  int number = 0;
  Segment segment;
  std::string etag;  // md5 hex
  int64_t mtime_ms = 0;
};
std::string encode(const PartMeta& m);
Result<PartMeta> decode_part(std::string_view bytes);

int64_t now_ms();

}  // namespace reservoir::store
