// Object data files of one cache directory, named by internal id (never by
// key): <dir>/<id % 256 as 2 hex>/<id as 16 hex>. A file is written under a
// temporary name and renamed into place when complete, so a file with its
// final name is always whole.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"

namespace reservoir::store {

// Writes one data file. Not thread-safe; owned by one writer at a time.
// Dropped without commit(), the temporary file is removed.
class FileWriter {
 public:
  FileWriter(std::string tmp_path, std::string final_path, int fd, uint64_t id);
  ~FileWriter();
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;

  Status append(const char* data, size_t n);
  // Makes the file durable (fsync when `sync`) and gives it its final name.
  Status commit(bool sync);
  uint64_t id() const { return id_; }
  uint64_t size() const { return size_; }
  uint32_t crc32c() const { return crc_; }
  // MD5 of everything appended, raw 16 bytes. Call once, after the last append.
  std::string md5();

 private:
  std::string tmp_path_, final_path_;
  int fd_;
  uint64_t id_;
  uint64_t size_ = 0;
  uint32_t crc_ = 0;
  void* md5_ctx_;
  bool committed_ = false;
};

class ObjectFiles {
 public:
  explicit ObjectFiles(std::string dir) : dir_(std::move(dir)) {}
  // Creates the shard directories and clears temporary leftovers of a crash.
  Status init();
  Result<std::unique_ptr<FileWriter>> create(uint64_t id);
  // Opens for reading; the open descriptor keeps the bytes readable even if
  // the file is removed meanwhile.
  Result<int> open(uint64_t id) const;
  void remove(uint64_t id) const;
  std::string path(uint64_t id) const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

}  // namespace reservoir::store
