// What a power cut cannot have taken: the sync point.
//
// Why: a cached page read through from the under store is written without an
// fsync (it can be fetched again), and so is all data with durability "none".
// Its record, though, can reach the disk before its bytes do: a later synced
// index write carries every earlier record with it. After a power cut such a
// record would name a file that is empty, short or torn, and a read would serve
// those bytes.
//
// How: every few seconds, and at a clean stop, the store notes the next data
// id and the ids still being written, fdatasyncs every file committed without
// an fsync since the last time (and their directories), and then records both
// with a synced index write: every data file below that id, except the few
// still being written, is on disk whole. At the next open, only the others are
// checked against their CRC32C before they are trusted
// (CacheStore::check_after_crash); a long upload does not hold the mark back. Each file is synced rather
// than the file system (syncfs): that is exact, does not wait for other
// programs' writes, and works where syncfs does nothing (FUSE).
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace reservoir::store {

inline constexpr const char* kSyncPointKey = "m/synced";

struct SyncPoint {
  uint64_t below = 0;          // data ids below it were on disk when it was written ...
  std::vector<uint64_t> open;  // ... except these, still being written then
  bool durable = true;         // the run that wrote it fsynced its data before acknowledging
  // Whether data `id` may not have survived a power cut after this point.
  bool unsure(uint64_t id) const;
};
std::string encode(const SyncPoint& p);
Result<SyncPoint> decode_sync_point(std::string_view bytes);

// Data ids handed out and not yet committed (their bytes still being
// written), and files committed without an fsync since the last sync point.
class OpenWrites {
 public:
  // Takes an id from `next` and notes it as open, as one step: a sync point
  // taken meanwhile sees either the id open or the counter past it.
  template <typename Next>
  uint64_t begin(Next&& next) {
    std::lock_guard lk(mu_);
    uint64_t id = next();
    open_.insert(id);
    return id;
  }
  // The write is over (committed with an fsync, or dropped).
  void end(uint64_t id);
  // Committed without an fsync, at `path`: the next sync point fsyncs it.
  void end_unsynced(uint64_t id, std::string path);
  struct Taken {
    uint64_t below = 0;               // `next_id()`
    std::vector<uint64_t> open;       // ids still being written
    std::vector<std::string> files;   // to fsync before `below` is recorded
  };
  template <typename NextId>
  Taken take(NextId&& next_id) {
    std::lock_guard lk(mu_);
    Taken t{next_id(), std::vector<uint64_t>(open_.begin(), open_.end()), std::move(unsynced_)};
    unsynced_.clear();
    return t;
  }
  // Files a failed sync point could not fsync: tried again next time.
  void put_back(std::vector<std::string> files);

 private:
  std::mutex mu_;
  std::multiset<uint64_t> open_;
  std::vector<std::string> unsynced_;
};

// fdatasync of each file (one removed meanwhile is skipped), then fsync of
// their directories.
Status sync_files(const std::vector<std::string>& paths, std::vector<std::string>* failed);

// Hands the file's bytes to `take` in order. false if the file is missing
// or not exactly `size` bytes long (what a power cut leaves); an error if it
// cannot be read (permissions, I/O): that says nothing about its bytes.
Result<bool> read_whole_file(const std::string& path, uint64_t size,
                             const std::function<void(const char* data, size_t n)>& take);

}  // namespace reservoir::store
