#include "ufs/memory_ufs.h"

#include <chrono>
#include <stdexcept>

#include "common/hash.h"

namespace reservoir::ufs {

Status MemoryUfs::check_fault() {
  if (throw_count_ > 0) {
    --throw_count_;
    throw std::runtime_error("injected by throw_next");
  }
  if (fail_count_ > 0) {
    --fail_count_;
    return fail_status_;
  }
  return ok_status();
}

Status MemoryUfs::check_path(const std::string& path) const {
  if (path.empty()) return invalid_argument("empty path");
  return ok_status();
}

Result<ObjectInfo> MemoryUfs::head(const std::string& path) {
  std::unique_lock lk(mu_);
  RETURN_IF_ERROR(check_fault());
  auto it = objects_.find(path);
  Result<ObjectInfo> r = it == objects_.end() ? Result<ObjectInfo>(not_found(path)) : it->second.info;
  cv_.wait(lk, [&] { return !hold_answers_; });  // an answer already on its way
  return r;
}

Result<std::unique_ptr<Source>> MemoryUfs::get(const std::string& path, uint64_t offset, uint64_t length) {
  std::unique_lock lk(mu_);
  RETURN_IF_ERROR(check_fault());
  auto it = objects_.find(path);
  if (it == objects_.end()) return not_found(path);
  const std::string& d = it->second.data;
  if (offset > d.size()) offset = d.size();
  std::string part = d.substr(offset, static_cast<size_t>(std::min<uint64_t>(length, d.size() - offset)));
  bytes_served_ += part.size();
  cv_.wait(lk, [&] { return !hold_answers_; });
  return std::unique_ptr<Source>(std::make_unique<StringSource>(std::move(part)));
}

Status MemoryUfs::put(const std::string& path, Source& src, uint64_t size, const ObjectInfo& meta) {
  {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return !hold_; });
    RETURN_IF_ERROR(check_fault());
  }
  auto data = read_all(src);
  if (!data.ok()) return data.status();
  if (data->size() != size) return internal_error("short source");
  std::lock_guard lk(mu_);
  Obj o{std::move(data.value()), meta};
  o.info.path = path;
  o.info.size = size;
  o.info.mtime_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch()).count();
  if (o.info.etag.empty()) o.info.etag = hex_encode(md5_raw(o.data));
  objects_[path] = std::move(o);
  ++puts_;
  return ok_status();
}

Status MemoryUfs::remove(const std::string& path) {
  std::unique_lock lk(mu_);
  cv_.wait(lk, [&] { return !hold_; });
  RETURN_IF_ERROR(check_fault());
  objects_.erase(path);
  return ok_status();
}

Result<ListPage> MemoryUfs::list(const std::string& prefix, const std::string& start_after, size_t max) {
  std::unique_lock lk(mu_);
  RETURN_IF_ERROR(check_fault());
  ListPage page;
  std::function<void()> after;
  after.swap(after_list_);
  struct RunAfter {  // after the page is taken, without the lock
    std::function<void()>& fn;
    std::unique_lock<std::mutex>& lk;
    ~RunAfter() {
      if (!fn) return;
      lk.unlock();
      fn();
    }
  } run_after{after, lk};
  for (auto it = objects_.upper_bound(start_after); it != objects_.end(); ++it) {
    if (it->first.compare(0, prefix.size(), prefix) != 0) {
      if (it->first > prefix) break;
      continue;
    }
    if (page.entries.size() == max) {
      page.truncated = true;
      break;
    }
    page.entries.push_back(it->second.info);
  }
  return page;
}

Status MemoryUfs::make_dir(const std::string& path) {
  std::lock_guard lk(mu_);
  RETURN_IF_ERROR(check_fault());
  dirs_[path] = true;
  return ok_status();
}

Status MemoryUfs::remove_dir(const std::string& path) {
  std::lock_guard lk(mu_);
  RETURN_IF_ERROR(check_fault());
  auto it = objects_.lower_bound(path + "/");
  if (it != objects_.end() && it->first.rfind(path + "/", 0) == 0) return failed_precondition("not empty");
  dirs_.erase(path);
  return ok_status();
}

Result<bool> MemoryUfs::dir_exists(const std::string& path) {
  std::lock_guard lk(mu_);
  return dirs_.count(path) > 0;
}

Result<std::vector<std::string>> MemoryUfs::list_dirs() {
  std::lock_guard lk(mu_);
  std::vector<std::string> out;
  for (auto& [k, v] : dirs_) out.push_back(k);
  return out;
}

void MemoryUfs::after_next_list(std::function<void()> fn) {
  std::lock_guard lk(mu_);
  after_list_ = std::move(fn);
}

void MemoryUfs::fail_next(int count, Status st) {
  std::lock_guard lk(mu_);
  fail_count_ = count;
  fail_status_ = std::move(st);
}

void MemoryUfs::throw_next(int count) {
  std::lock_guard lk(mu_);
  throw_count_ = count;
}

void MemoryUfs::hold_writes(bool hold) {
  std::lock_guard lk(mu_);
  hold_ = hold;
  cv_.notify_all();
}

void MemoryUfs::hold_answers(bool hold) {
  std::lock_guard lk(mu_);
  hold_answers_ = hold;
  cv_.notify_all();
}

std::optional<std::string> MemoryUfs::data(const std::string& path) const {
  std::lock_guard lk(mu_);
  auto it = objects_.find(path);
  if (it == objects_.end()) return std::nullopt;
  return it->second.data;
}

size_t MemoryUfs::object_count() const {
  std::lock_guard lk(mu_);
  return objects_.size();
}

uint64_t MemoryUfs::puts() const {
  std::lock_guard lk(mu_);
  return puts_;
}

uint64_t MemoryUfs::bytes_served() const {
  std::lock_guard lk(mu_);
  return bytes_served_;
}

}  // namespace reservoir::ufs
