// An in-memory under store for tests, with fault injection: a test can make
// the next calls fail with a chosen Status, or hold them until released.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "ufs/ufs.h"

namespace reservoir::ufs {

class MemoryUfs : public UnderStore {
 public:
  explicit MemoryUfs(std::string uri = "mem://test") : uri_(std::move(uri)) {}

  std::string uri() const override { return uri_; }
  Status check_path(const std::string& path) const override;
  Result<ObjectInfo> head(const std::string& path) override;
  Result<std::unique_ptr<Source>> get(const std::string& path, uint64_t offset, uint64_t length) override;
  Status put(const std::string& path, Source& src, uint64_t size, const ObjectInfo& meta) override;
  Status remove(const std::string& path) override;
  Result<ListPage> list(const std::string& prefix, const std::string& start_after, size_t max) override;
  Status make_dir(const std::string& path) override;
  Status remove_dir(const std::string& path) override;
  Result<bool> dir_exists(const std::string& path) override;
  Result<std::vector<std::string>> list_dirs() override;

  // --- test controls ---
  // The next `count` calls (any operation) fail with `st`.
  void fail_next(int count, Status st);
  // The next `count` calls throw std::runtime_error (code that should not throw, but might).
  void throw_next(int count);
  // While held, put/remove block until release().
  void hold_writes(bool hold);
  // While held, head/get take their answer at once but return it only on
  // release() (a slow response: the object may change meanwhile).
  void hold_answers(bool hold);
  // Runs once, on the next list, after its page is taken and before it is
  // returned (the under store changing while a listing is under way).
  void after_next_list(std::function<void()> fn);
  // The data of an object, or nullopt.
  std::optional<std::string> data(const std::string& path) const;
  size_t object_count() const;
  uint64_t puts() const;
  uint64_t bytes_served() const;

 private:
  Status check_fault();
  struct Obj {
    std::string data;
    ObjectInfo info;
  };
  std::string uri_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Obj> objects_;
  std::map<std::string, bool> dirs_;
  int fail_count_ = 0;
  int throw_count_ = 0;
  Status fail_status_;
  bool hold_ = false;
  bool hold_answers_ = false;
  std::function<void()> after_list_;
  uint64_t puts_ = 0;
  uint64_t bytes_served_ = 0;
};

}  // namespace reservoir::ufs
