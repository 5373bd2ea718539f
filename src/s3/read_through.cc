#include "s3/read_through.h"

#include <unistd.h>

#include <cstring>

#include <fmt/format.h>

#include "common/log.h"

namespace reservoir::s3 {

namespace {

constexpr int kStoreBacklog = 4;  // pages of one run waiting to be stored
constexpr uint64_t kHotMax = 64 * 1024;  // objects up to this size are kept in memory too

uint64_t page_count(const PagedObject& o) { return (o.size + o.page_size - 1) / o.page_size; }
uint64_t page_len(const PagedObject& o, uint64_t page) {
  return std::min<uint64_t>(o.page_size, o.size - page * o.page_size);
}

// Reads a version page by page through a ReadThrough. One reader at a time
// (the handle that owns it); the current page stays open between calls.
class PageSourceImpl : public store::PageSource {
 public:
  PageSourceImpl(ReadThrough& rt, PagedObject obj, ReadThrough::Run held)
      : rt_(rt), obj_(std::move(obj)), held_(std::move(held)) {}
  ~PageSourceImpl() override { release(); }

  Result<size_t> pread(uint64_t offset, char* buf, size_t n) override {
    std::lock_guard lk(mu_);
    if (offset >= obj_.size || n == 0) return size_t{0};
    uint64_t page = offset / obj_.page_size;
    if (static_cast<int64_t>(page) != cur_) {
      release();
      uint64_t end_page = (std::min(hint_end_, obj_.size) + obj_.page_size - 1) / obj_.page_size;
      end_page = std::max(end_page, page + 1);
      uint64_t ahead = std::min(end_page, page + 1 + static_cast<uint64_t>(rt_.config().readahead_pages));
      // A miss fetches the rest of the span (up to a long run) in one request;
      // pages that will not be kept are held by this reader until it reads
      // them, so their run stays within the read-ahead window.
      uint64_t run_to = std::min(end_page, page + rt_.max_run(obj_.read_type));
      auto d = from_held(page);
      if (!d) {
        uint64_t len = 0;
        d = rt_.read_page_data(obj_, page, run_to, &fd_, &len, &held_);
        if (!d->ok()) return d->status();
      }
      mem_ = std::move(d->value());
      cur_ = static_cast<int64_t>(page);
      // Read-ahead past the pages this reader already has flights for.
      uint64_t from = held_.empty() ? page + 1 : std::max(page + 1, held_.back().first + 1);
      if (ahead > from) rt_.prefetch(obj_, from, ahead, &held_);
    }
    uint64_t in_page = offset - page * obj_.page_size;
    uint64_t plen = page_len(obj_, page);
    size_t want = static_cast<size_t>(std::min<uint64_t>(n, plen - in_page));
    if (mem_) {
      if (mem_->size() != plen) return io_error("cached page has the wrong size");
      std::memcpy(buf, mem_->data() + in_page, want);
      return want;
    }
    ssize_t r;
    do { r = ::pread(fd_, buf, want, static_cast<off_t>(in_page)); } while (r < 0 && errno == EINTR);
    if (r < 0) return errno_status("read cached page", errno);
    if (r == 0) return io_error("cached page shorter than its record");
    return static_cast<size_t>(r);
  }

  void hint(uint64_t first, uint64_t length) override {
    std::lock_guard lk(mu_);
    hint_end_ = length == UINT64_MAX ? UINT64_MAX : first + length;
  }

 private:
  // The page from a flight this reader started or adopted (pages that are
  // not kept, e.g. no-cache, exist nowhere else once their flight ends).
  // Flights of pages before it are let go; a failed flight is retried
  // through the cache.
  std::optional<Result<std::shared_ptr<const std::string>>> from_held(uint64_t page) {
    std::erase_if(held_, [&](const auto& h) { return h.first < page; });
    auto it = std::find_if(held_.begin(), held_.end(), [&](const auto& h) { return h.first == page; });
    if (it == held_.end()) return std::nullopt;
    auto flight = std::move(it->second);
    held_.erase(it);
    auto d = ReadThrough::wait(*flight);
    if (!d.ok() || !d.value()) return std::nullopt;
    return d;
  }

  void release() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    mem_.reset();
    cur_ = -1;
  }

  ReadThrough& rt_;
  PagedObject obj_;
  std::mutex mu_;
  uint64_t hint_end_ = UINT64_MAX;
  int64_t cur_ = -1;
  int fd_ = -1;
  std::shared_ptr<const std::string> mem_;
  ReadThrough::Run held_;
};

}  // namespace

ReadThrough::ReadThrough(store::CacheStore& store, const CacheConfig& config, int fetch_threads)
    : store_(store), config_(config) {
  for (int i = 0; i < fetch_threads; ++i) workers_.emplace_back([this] { worker(); });
}

ReadThrough::~ReadThrough() {
  {
    std::lock_guard lk(q_mu_);
    stop_ = true;
  }
  q_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ReadThrough::submit(std::function<void()> job) {
  {
    std::lock_guard lk(q_mu_);
    queue_.push_back(std::move(job));
  }
  q_cv_.notify_one();
}

void ReadThrough::worker() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lk(q_mu_);
      q_cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      job();  // fetch runs fail their own flights; a store job's page was published already
    } catch (const std::exception& e) {
      LOG_ERROR("read-through job failed: {}", e.what());
    }
  }
}

uint64_t ReadThrough::max_run(ReadType read_type) const {
  if (read_type == ReadType::no_cache) return 1 + static_cast<uint64_t>(config_.readahead_pages);
  return kMaxRunPages;
}

std::shared_ptr<store::PageSource> ReadThrough::open(const PagedObject& obj, Run held) {
  return std::make_shared<PageSourceImpl>(*this, obj, std::move(held));
}

Result<std::shared_ptr<const std::string>> ReadThrough::wait(Flight& f) {
  std::unique_lock lk(f.mu);
  f.cv.wait(lk, [&] { return f.done; });
  if (!f.status.ok()) return f.status;
  return f.data;
}

std::string ReadThrough::flight_key(const PagedObject& obj, uint64_t page) const {
  return fmt::format("{}{}{}{}{:x}/{:x}", obj.bucket, '\0', obj.key, '\0', obj.version, page);
}

ReadStats ReadThrough::stats() const {
  return {page_hits_.load(), page_misses_.load(), object_hits_.load(), backend_bytes_.load(), uncached_bytes_.load(),
          promotions_.load()};
}

Result<std::shared_ptr<const std::string>> ReadThrough::read_page_data(const PagedObject& obj, uint64_t page,
                                                                       uint64_t ahead_to, int* fd_out,
                                                                       uint64_t* fd_len, Run* started) {
  *fd_out = -1;
  // Gives up after 4 changes of the page (its data gone, a run claimed by
  // another reader); a page kept and let go by its flight is only a look again.
  int changes = 0;
  for (int looks = 0; changes < 4 && looks < 20; ++looks) {
    auto seg = store_.get_page(obj.bucket, obj.key, obj.version, page);
    if (!seg.ok()) return seg.status();
    if (seg.value()) {
      const store::Segment& s = *seg.value();
      std::shared_ptr<const std::string> data;
      if (s.in_index) {
        auto d = store_.read_inline(s);
        if (d.ok()) data = std::make_shared<const std::string>(std::move(d.value()));
      } else {
        auto fd = store_.open_data(s);
        if (fd.ok()) *fd_out = *fd;
      }
      if (data || *fd_out >= 0) {
        ++page_hits_;
        store_.space().touch(obj.bucket, obj.key, static_cast<int64_t>(page));
        if (data && page == 0 && data->size() == obj.size && obj.size <= kHotMax)
          store_.keep_hot(obj.bucket, obj.key, obj.version, *data);
        if (obj.read_type == ReadType::promote && s.tier > 0)
          promote({obj.bucket, obj.key, obj.version, static_cast<int64_t>(page), s.tier, s.size});
        *fd_len = s.size;
        return data;
      }
      // The record outlived its data (a crash before the data was written
      // back by the OS): forget it and fetch the page again.
      LOG_WARN("cached page {} of {}/{} is unreadable; fetching it again", page, obj.bucket, obj.key);
      store::CacheUnit u{obj.bucket, obj.key, obj.version, static_cast<int64_t>(page), s.tier, s.size};
      (void)store_.drop_unit(u);
      ++changes;
      continue;
    }
    std::shared_ptr<Flight> f;
    {
      std::lock_guard lk(mu_);
      auto it = flights_.find(flight_key(obj, page));
      if (it != flights_.end()) f = it->second;
    }
    if (!f) {
      auto run = claim_run(obj, page, std::max(ahead_to, page + 1));
      if (run.empty()) {  // stored or started meanwhile: look again
        ++changes;
        continue;
      }
      f = run.front().second;
      if (started) started->insert(started->end(), run.begin() + 1, run.end());
      submit([this, obj, run] { fetch_run(obj, run); });
    }
    auto d = wait(*f);
    if (d.ok() && !d.value()) continue;  // kept, and let go by its flight: in the cache now
    return d;
  }
  return unavailable("page " + std::to_string(page) + " keeps changing");
}

ReadThrough::Run ReadThrough::claim_run(const PagedObject& obj, uint64_t first, uint64_t to) {
  Run run;
  to = std::min(to, page_count(obj));
  for (uint64_t p = first; p < to; ++p) {
    // The flight first, then the cache: a page leaves flight only once it
    // is stored, so a page found in neither is really missing.
    {
      std::lock_guard lk(mu_);
      if (flights_.count(flight_key(obj, p))) break;
    }
    auto seg = store_.get_page(obj.bucket, obj.key, obj.version, p);
    if (!seg.ok() || seg.value()) break;
    std::lock_guard lk(mu_);
    auto [it, fresh] = flights_.try_emplace(flight_key(obj, p));
    if (!fresh) break;
    it->second = std::make_shared<Flight>();
    run.emplace_back(p, it->second);
  }
  return run;
}

void ReadThrough::prefetch(const PagedObject& obj, uint64_t from, uint64_t to, Run* started) {
  to = std::min(to, page_count(obj));
  for (uint64_t p = from; p < to; ++p) {
    {
      std::lock_guard lk(mu_);
      if (flights_.count(flight_key(obj, p))) continue;
    }
    auto seg = store_.get_page(obj.bucket, obj.key, obj.version, p);
    if (!seg.ok() || seg.value()) continue;
    auto run = claim_run(obj, p, to);
    if (run.empty()) continue;
    p = run.back().first;
    if (started) started->insert(started->end(), run.begin(), run.end());
    submit([this, obj, run] { fetch_run(obj, run); });
  }
}

void ReadThrough::publish(const std::shared_ptr<Flight>& f, Status st, std::shared_ptr<const std::string> data) {
  {
    std::lock_guard lk(f->mu);
    if (f->done) return;
    f->done = true;
    f->status = std::move(st);
    f->data = std::move(data);
  }
  f->cv.notify_all();
}

void ReadThrough::finish(const PagedObject& obj, uint64_t page, const std::shared_ptr<Flight>& f, Status st,
                         std::shared_ptr<const std::string> data) {
  publish(f, std::move(st), std::move(data));
  std::lock_guard lk(mu_);
  auto it = flights_.find(flight_key(obj, page));
  if (it != flights_.end() && it->second == f) flights_.erase(it);
}

ReadThrough::Run ReadThrough::adopt(const PagedObject& obj, uint64_t first, std::unique_ptr<ufs::Source> src,
                                    uint64_t src_length) {
  uint64_t pages = src_length / obj.page_size + (src_length % obj.page_size ? 1 : 0);
  auto run = claim_run(obj, first, first + pages);
  if (run.empty() || run.front().first != first) return {};  // someone else is at it: drop the stream
  std::shared_ptr<ufs::Source> shared(std::move(src));
  submit([this, obj, run, shared] { fetch_run(obj, run, shared); });
  return run;
}

void ReadThrough::fetch_run(const PagedObject& obj, const Run& run, std::shared_ptr<ufs::Source> given) {
  try {
    fetch_pages(obj, run, std::move(given));
  } catch (const std::exception& e) {  // on a fetch worker, a throw would end the process
    LOG_ERROR("fetching {}/{} failed: {}", obj.bucket, obj.key, e.what());
    for (auto& [page, flight] : run) finish(obj, page, flight, internal_error(std::string("fetch failed: ") + e.what()), nullptr);
  }
}

void ReadThrough::fetch_pages(const PagedObject& obj, const Run& run, std::shared_ptr<ufs::Source> given) {
  uint64_t off = run.front().first * obj.page_size;
  uint64_t end = std::min(obj.size, (run.back().first + 1) * obj.page_size);
  size_t done = 0;
  auto fail_rest = [&](const Status& st) {
    for (size_t i = done; i < run.size(); ++i) finish(obj, run[i].first, run[i].second, st, nullptr);
  };
  Result<std::unique_ptr<ufs::Source>> src = std::unique_ptr<ufs::Source>();
  ufs::Source* in = given.get();
  if (!in) {
    // The response says which object it is: bytes of another version (the
    // object was replaced in the under store) never fill this one's pages.
    auto o = obj.ufs->open_read(obj.ufs_path, off, end - off);
    if (!o.ok()) {
      Status st = o.status();
      if (st.code() == Code::not_found) st = unavailable("the object vanished from the under store: " + st.message());
      fail_rest(st);
      return;
    }
    if (o->info.size != obj.size || (!obj.etag.empty() && !o->info.etag.empty() && o->info.etag != obj.etag)) {
      // Forget the cached version: the next read starts on the new one.
      (void)store_.erase_version(obj.bucket, obj.key, obj.version);
      LOG_INFO("{}/{} changed in the under store (size {}, ETag {}; cached: {}, {}): dropped from the cache",
               obj.bucket, obj.key, o->info.size, o->info.etag, obj.size, obj.etag);
      fail_rest(unavailable("the object changed in the under store while it was read; retry the request"));
      return;
    }
    src = std::move(o->src);
    in = src->get();
  }
  struct Backlog {
    std::mutex mu;
    int pending = 0;
    bool inline_store = false;  // only the fetching thread reads it
  };
  auto backlog = std::make_shared<Backlog>();
  for (; done < run.size(); ++done) {
    auto [page, flight] = run[done];
    uint64_t plen = page_len(obj, page);
    auto data = std::make_shared<std::string>();
    data->resize(plen);
    uint64_t got = 0;
    while (got < plen) {
      auto n = in->read(data->data() + got, static_cast<size_t>(plen - got));
      if (!n.ok()) {
        fail_rest(n.status());
        return;
      }
      if (*n == 0) {
        fail_rest(unavailable("the object changed in the under store while it was read (shorter than its size)"));
        return;
      }
      got += *n;
    }
    backend_bytes_ += plen;
    ++page_misses_;
    // Readers get the page now; it stays in flight (answering late comers
    // from memory) until it is stored.
    std::shared_ptr<const std::string> bytes = std::move(data);
    publish(flight, ok_status(), bytes);
    // Stored on another thread while this one reads on; with a few pages
    // already waiting, stored here (bounds the memory a run holds, and never
    // waits for a pool thread that may itself be waiting).
    {
      std::lock_guard lk(backlog->mu);
      if (backlog->pending >= kStoreBacklog) {
        backlog->inline_store = true;
      } else {
        backlog->inline_store = false;
        ++backlog->pending;
      }
    }
    if (backlog->inline_store) {
      store_page(obj, page, flight, bytes);
      continue;
    }
    uint64_t pg = page;
    std::shared_ptr<Flight> fl = flight;
    submit([this, obj, pg, fl, bytes, backlog] {
      store_page(obj, pg, fl, bytes);
      std::lock_guard lk(backlog->mu);
      --backlog->pending;
    });
  }
}

void ReadThrough::store_page(const PagedObject& obj, uint64_t page, const std::shared_ptr<Flight>& flight,
                             const std::shared_ptr<const std::string>& bytes) {
  bool kept = false;
  if (obj.read_type != ReadType::no_cache) {
    auto file = store_.new_file(true, bytes->size(), true);
    if (file.ok()) (*file)->skip_md5();
    if (file.ok() && (*file)->append(bytes->data(), bytes->size()).ok() && (*file)->commit(false).ok()) {
      store::Segment seg = (*file)->segment();
      seg.crc32c = (*file)->crc32c();  // checked at a start after a power cut
      auto put = store_.put_page(obj.bucket, obj.key, obj.version, page, seg);
      if (put.ok() && *put) kept = true;
      else store_.remove_data(seg);
    }
  }
  if (!kept) uncached_bytes_ += bytes->size();
  else if (page == 0 && bytes->size() == obj.size && obj.size <= kHotMax)
    store_.keep_hot(obj.bucket, obj.key, obj.version, *bytes);  // small: answered from memory next time
  finish(obj, page, flight, ok_status(), bytes);
  if (kept) {
    // In the cache now: readers holding the flight read it from there.
    std::lock_guard lk(flight->mu);
    flight->data.reset();
  }
}

Result<uint64_t> ReadThrough::load(const PagedObject& obj) {
  uint64_t pages = page_count(obj);
  constexpr uint64_t kRun = 16;
  for (uint64_t p = 0; p < pages; ++p) {
    int fd = -1;
    uint64_t len = 0;
    auto d = read_page_data(obj, p, std::min(pages, p + kRun), &fd, &len);
    if (fd >= 0) ::close(fd);
    if (!d.ok()) return d.status();
  }
  return obj.size;
}

void ReadThrough::promote(const store::CacheUnit& u) {
  submit([this, u] {
    int to = store_.space().reserve(u.bytes, true, 0);
    if (to < 0) return;
    if (to < u.tier) {
      auto r = store_.move_unit(u, to);
      if (r.ok() && *r) ++promotions_;
    }
    store_.space().unreserve(to, u.bytes);
  });
}

}  // namespace reservoir::s3
