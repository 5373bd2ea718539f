// Records that hold no data, in least-recently-used order, so that their
// number can be bounded.
//
// A HEAD or GET of a key the cache does not hold records the under store's
// answer (size, ETag, metadata) even when no byte of it is kept; empty
// objects have no data either. Tier quotas bound everything that has data
// (a record goes with its last byte), but not these. The owner
// (store::CacheStore) keeps one entry per such record and forgets the
// coldest ones beyond a configured number. Thread-safe.
#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace reservoir::cache {

class RecordLru {
 public:
  // Adds a record (or makes a known one the most recent, with this version).
  void touch(std::string_view id, uint64_t version);
  // Makes a known record the most recent; false if it is not known.
  bool refresh(std::string_view id);
  // Removes a record: any version (0), or only this one.
  void remove(std::string_view id, uint64_t version = 0);
  bool contains(std::string_view id, uint64_t version) const;
  size_t size() const;
  // Up to n records, the least recently used first.
  std::vector<std::pair<std::string, uint64_t>> coldest(size_t n) const;
  // The same, and makes them the most recent: callers running at once each
  // get other records.
  std::vector<std::pair<std::string, uint64_t>> take_coldest(size_t n);

 private:
  struct Entry {
    std::string id;
    uint64_t version = 0;
  };
  mutable std::mutex mu_;
  std::list<Entry> order_;  // front: least recently used
  // Keys view the ids of order_'s nodes, which never move.
  std::unordered_map<std::string_view, std::list<Entry>::iterator> by_id_;
};

}  // namespace reservoir::cache
