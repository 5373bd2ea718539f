#include "store/sync_point.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/fileio.h"

namespace reservoir::store {

using nlohmann::json;

std::string encode(const SyncPoint& p) {
  return json{{"below", p.below}, {"open", p.open}, {"durable", p.durable}}.dump();
}

bool SyncPoint::unsure(uint64_t id) const {
  return id >= below || std::binary_search(open.begin(), open.end(), id);
}

Result<SyncPoint> decode_sync_point(std::string_view bytes) {
  try {
    auto j = json::parse(bytes);
    auto open = j.value("open", std::vector<uint64_t>{});
    std::sort(open.begin(), open.end());
    return SyncPoint{j.at("below").get<uint64_t>(), std::move(open), j.at("durable").get<bool>()};
  } catch (const json::exception& e) {
    return internal_error(std::string("corrupt sync point in the index: ") + e.what());
  }
}

void OpenWrites::end(uint64_t id) {
  std::lock_guard lk(mu_);
  auto it = open_.find(id);
  if (it != open_.end()) open_.erase(it);
}

void OpenWrites::end_unsynced(uint64_t id, std::string path) {
  std::lock_guard lk(mu_);
  unsynced_.push_back(std::move(path));
  auto it = open_.find(id);
  if (it != open_.end()) open_.erase(it);
}

void OpenWrites::put_back(std::vector<std::string> files) {
  std::lock_guard lk(mu_);
  for (auto& f : files) unsynced_.push_back(std::move(f));
}

Status sync_files(const std::vector<std::string>& paths, std::vector<std::string>* failed) {
  Status first;
  std::set<std::string> dirs;
  for (const auto& p : paths) {
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) continue;  // removed (evicted, overwritten, moved) meanwhile
      if (first.ok()) first = errno_status("open " + p, errno);
      failed->push_back(p);
      continue;
    }
    if (::fdatasync(fd) != 0) {
      if (first.ok()) first = errno_status("fsync " + p, errno);
      failed->push_back(p);
    } else {
      dirs.insert(p.substr(0, p.rfind('/')));
    }
    ::close(fd);
  }
  for (const auto& d : dirs) fsync_dir(d);
  return first;
}

Result<bool> read_whole_file(const std::string& path, uint64_t size,
                             const std::function<void(const char* data, size_t n)>& take) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return false;
    return errno_status("open " + path, errno);
  }
  std::vector<char> buf(1 << 20);
  uint64_t off = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status st = errno_status("read " + path, errno);
      ::close(fd);
      return st;
    }
    if (n == 0) break;
    size_t use = static_cast<size_t>(std::min<uint64_t>(static_cast<uint64_t>(n), size - std::min(off, size)));
    if (use) take(buf.data(), use);
    off += static_cast<uint64_t>(n);
  }
  ::close(fd);
  return off == size;
}

}  // namespace reservoir::store
