// One mutex per key being written, made on demand and dropped when its last
// user leaves: writes of one key (a synchronous upload and its commit, a
// write-back commit, a delete) are serialized, writes of other keys never
// wait for them.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace reservoir::s3 {

class KeyLocks {
 public:
  class Guard {
   public:
    Guard(KeyLocks* owner, std::string key);
    ~Guard();
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

   private:
    KeyLocks* owner_;
    std::string key_;
    std::shared_ptr<std::mutex> mu_;
  };

  // Blocks until no other guard holds `key`.
  Guard lock(const std::string& bucket, const std::string& key) { return Guard(this, bucket + '\0' + key); }
  size_t size() const;

 private:
  struct Entry {
    std::shared_ptr<std::mutex> mu = std::make_shared<std::mutex>();
    int users = 0;
  };
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> map_;
};

}  // namespace reservoir::s3
