// Object data of the cache tiers, by internal id (never by key).
//
// Large data lives in files <tier dir>/<id % 256 as 2 hex>/<id as 16 hex>, written
// under a temporary name and renamed into place when complete, so a file with
// its final name is always whole. Data up to `inline_max` bytes is kept in the
// index instead (key "i<id>"): its durability then comes with the synced
// index write that commits the object, one WAL fsync instead of a file fsync,
// a directory fsync and a WAL fsync.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "store/index.h"
#include "store/meta.h"

namespace reservoir::store {

class ObjectFiles;
class CacheSpace;
class OpenWrites;

// Writes one piece of object data. Not thread-safe; owned by one writer at a
// time. Dropped without commit(), nothing remains.
class FileWriter {
 public:
  // `space`, when given, holds `reserved` bytes on `tier` for this writer
  // (released when the writer goes) and counts the data once committed.
  FileWriter(const ObjectFiles& files, KvIndex* index, uint64_t id, size_t inline_max, int tier = 0,
             CacheSpace* space = nullptr, uint64_t reserved = 0);
  ~FileWriter();
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;

  Status append(const char* data, size_t n);
  // Makes the data durable (fsync when `sync`, for files) and final. Data kept
  // in the index is written unsynced: the synced commit of the object record
  // that follows makes it durable too (the WAL is sequential). With
  // `defer_inline`, data kept in the index is not written yet: the caller
  // adds it to the record's own batch (take_inline) or writes it before the
  // data is read (write_inline).
  Status commit(bool sync, bool defer_inline = false);
  // Data of a deferred commit, moved into `b` (nothing if none is pending).
  void take_inline(KvBatch& b);
  Status write_inline();
  uint64_t id() const { return id_; }
  uint64_t size() const { return size_; }
  uint32_t crc32c() const { return crc_; }
  bool in_index() const { return fd_ < 0 && !spilled_; }
  // The bytes of data kept in the index (valid after commit too).
  const std::string& inline_data() const { return buf_; }
  Segment segment() const { return {id_, size_, in_index(), static_cast<uint8_t>(tier_), std::nullopt}; }
  int tier() const { return tier_; }
  // Written beyond the tiers' quotas (no room was left): must not stay cached.
  bool overflow() const { return overflow_; }
  void set_overflow() { overflow_ = true; }
  // MD5 of everything appended, raw 16 bytes. Call once, after the last append.
  std::string md5();
  // No MD5 (data whose ETag is known already, e.g. pages read through):
  // call before the first append.
  void skip_md5() { with_md5_ = false; }
  // `writes` holds this writer's id as open until its bytes are all written
  // (commit, or the writer goes): see sync_point.h.
  void track(OpenWrites* writes) { open_writes_ = writes; }

 private:
  void end_write();
  void counted();  // committed: its bytes added to the tier's use, its reservation released
  Status spill();  // from memory to a temporary file

  const ObjectFiles& files_;
  KvIndex* index_;
  uint64_t id_;
  size_t inline_max_;
  std::string buf_;       // data while it fits inline
  std::string tmp_path_, final_path_;
  int fd_ = -1;
  bool spilled_ = false;
  uint64_t size_ = 0;
  uint32_t crc_ = 0;
  void* md5_ctx_;
  bool committed_ = false;
  int tier_;
  CacheSpace* space_;
  uint64_t reserved_;
  bool overflow_ = false;
  bool with_md5_ = true;
  bool inline_pending_ = false;
  uint64_t flushed_ = 0;  // bytes handed to the disk early (sync_file_range)
  OpenWrites* open_writes_ = nullptr;
};

class ObjectFiles {
 public:
  // One directory per tier, the fastest first.
  explicit ObjectFiles(std::vector<std::string> dirs) : dirs_(std::move(dirs)) {}
  // Creates the shard directories and clears temporary leftovers of a crash.
  Status init();
  // Opens for reading; the open descriptor keeps the bytes readable even if
  // the file is removed meanwhile.
  Result<int> open(uint64_t id, int tier = 0) const;
  void remove(uint64_t id, int tier = 0) const;
  std::string path(uint64_t id, int tier = 0) const;
  std::string tmp_path(uint64_t id, int tier = 0) const;
  const std::string& dir(int tier = 0) const { return dirs_[static_cast<size_t>(tier)]; }
  int tiers() const { return static_cast<int>(dirs_.size()); }

 private:
  std::vector<std::string> dirs_;
};

// Index key of data kept in the index.
std::string inline_key(uint64_t id);

}  // namespace reservoir::store
