// One mutex per key being written, made on demand and dropped when its last
// user leaves: writes of one key (a synchronous upload and its commit, a
// write-back commit, a delete) are serialized, writes of other keys never
// wait for them. Each write also counts as a change of its key (in stripes
// of keys), so that a reader can tell whether a write of the key ran while
// it asked the under store about it.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace reservoir::s3 {

class KeyLocks {
 public:
  class Guard {
   public:
    Guard(KeyLocks* owner, std::string key, std::atomic<uint64_t>* changes);
    ~Guard();
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

   private:
    KeyLocks* owner_;
    std::string key_;
    std::shared_ptr<std::mutex> mu_;
    std::atomic<uint64_t>* changes_;  // counted when the guard is released; null: not a change
  };

  // Blocks until no other guard holds the key. A write's guard (`change`)
  // counts a change of the key when it is released, still holding the key.
  Guard lock(const std::string& bucket, const std::string& key, bool change = true) {
    std::string k = bucket + '\0' + key;
    auto* c = change ? &stripe(k) : nullptr;
    return Guard(this, std::move(k), c);
  }
  // Changes of the key so far (and of the other keys of its stripe).
  uint64_t changes(const std::string& bucket, const std::string& key) { return stripe(bucket + '\0' + key).load(); }
  size_t size() const;

 private:
  struct Entry {
    std::shared_ptr<std::mutex> mu = std::make_shared<std::mutex>();
    int users = 0;
  };
  std::atomic<uint64_t>& stripe(const std::string& k) { return changes_[std::hash<std::string>{}(k) % changes_.size()]; }

  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> map_;
  std::array<std::atomic<uint64_t>, 4096> changes_{};
};

}  // namespace reservoir::s3
