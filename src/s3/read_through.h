// Read-through by page: objects of the under store are fetched and cached in
// pages of `page_size` bytes, on demand. Concurrent readers of a missing page
// wait for one fetch (single flight); a contiguous run of missing pages is
// fetched with one ranged request, on a pool of fetch threads, so a reader is
// served each page as soon as it has arrived while the rest of the run is
// still coming (streaming), and pages ahead of a sequential reader are
// fetched before it asks (read-ahead).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/config.h"
#include "store/cache_store.h"
#include "ufs/ufs.h"

namespace reservoir::s3 {

struct ReadStats {
  uint64_t page_hits = 0;
  uint64_t page_misses = 0;       // pages fetched from the under store
  uint64_t object_hits = 0;       // opens of objects held whole in the cache
  uint64_t backend_bytes = 0;     // bytes read from under stores
  uint64_t uncached_bytes = 0;    // fetched bytes not kept (no room, or no-cache)
  uint64_t promotions = 0;
};

// What a page source reads: one version of one object.
struct PagedObject {
  std::string bucket, key;
  uint64_t version = 0;
  uint64_t size = 0;
  uint64_t page_size = 0;
  ufs::UnderStore* ufs = nullptr;  // owned by the namespace
  std::string ufs_path;
  ReadType read_type = ReadType::cache;
  std::string etag;  // the under store's ETag of this version: a page fetch checks it
};

class ReadThrough {
 public:
  // The longest run of pages one ranged GET fetches for a reader whose span
  // goes on (a whole-object read streams in requests of up to this many).
  static constexpr uint64_t kMaxRunPages = 64;

  ReadThrough(store::CacheStore& store, const CacheConfig& config, int fetch_threads = 16);
  ~ReadThrough();

  struct Flight;
  // Pages being fetched, in order, each with its flight.
  using Run = std::vector<std::pair<uint64_t, std::shared_ptr<Flight>>>;

  // A source of the object's bytes, from cached pages or fetched. `held`:
  // flights the reader already owns (the run a cold open adopted); pages
  // not kept in the cache (no-cache, no room) are read from them.
  std::shared_ptr<store::PageSource> open(const PagedObject& obj, Run held = {});
  // Fetches every missing page of the object (reservoir load). Returns the
  // bytes fetched from the under store.
  Result<uint64_t> load(const PagedObject& obj);
  // Takes over a stream already opened at page `first` (a cold read that got
  // the object's metadata with its first bytes): the pages it covers are
  // fetched from it, once, for every reader. Returns the run's flights
  // (empty when another reader was already fetching them).
  Run adopt(const PagedObject& obj, uint64_t first, std::unique_ptr<ufs::Source> src, uint64_t src_length);
  // Moves a cached unit to the fastest tier in the background.
  void promote(const store::CacheUnit& u);

  ReadStats stats() const;
  void count_object_hit() { ++object_hits_; }

  // --- used by page sources ---
  struct Flight {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    Status status;
    std::shared_ptr<const std::string> data;  // the page's bytes
  };
  // The page's bytes: from the cache, or fetched once for all readers.
  // `ahead_to` (exclusive page) lets one fetch cover the pages after it;
  // the flights of a run this call starts are added to `started`, so the
  // reader can take those pages from them even when they are not kept.
  Result<std::shared_ptr<const std::string>> read_page_data(const PagedObject& obj, uint64_t page,
                                                            uint64_t ahead_to, int* fd_out, uint64_t* fd_len,
                                                            Run* started = nullptr);
  // Starts fetches of missing pages in [from, to) without waiting; their
  // flights are added to `started`.
  void prefetch(const PagedObject& obj, uint64_t from, uint64_t to, Run* started = nullptr);
  // Waits for a flight to end; its page, or its error.
  static Result<std::shared_ptr<const std::string>> wait(Flight& f);
  const CacheConfig& config() const { return config_; }
  // The longest run one fetch takes for this object (shorter for pages that
  // are not kept: the reader holds them until it reads them).
  uint64_t max_run(ReadType read_type) const;

 private:
  std::string flight_key(const PagedObject& obj, uint64_t page) const;
  // Registers flights for the missing pages from `first` (which must be
  // missing) up to `to`, stopping at the first page cached or in flight.
  Run claim_run(const PagedObject& obj, uint64_t first, uint64_t to);
  // Fetches the run with one ranged GET, or from `src` when given (opened at
  // the run's first page). An exception fails the run's flights (readers
  // waiting on them must not wait forever); fetch_pages does the work.
  void fetch_run(const PagedObject& obj, const Run& run, std::shared_ptr<ufs::Source> src = nullptr);
  void fetch_pages(const PagedObject& obj, const Run& run, std::shared_ptr<ufs::Source> src);
  // Writes a fetched page into the cache, then ends its flight.
  void store_page(const PagedObject& obj, uint64_t page, const std::shared_ptr<Flight>& flight,
                  const std::shared_ptr<const std::string>& bytes);
  // Hands the page (or the error) to its waiting readers.
  void publish(const std::shared_ptr<Flight>& f, Status st, std::shared_ptr<const std::string> data);
  // Publishes (if not yet) and ends the flight: later readers look in the cache.
  void finish(const PagedObject& obj, uint64_t page, const std::shared_ptr<Flight>& f, Status st,
              std::shared_ptr<const std::string> data);
  void submit(std::function<void()> job);
  void worker();

  store::CacheStore& store_;
  CacheConfig config_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Flight>> flights_;
  std::mutex q_mu_;
  std::condition_variable q_cv_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> page_hits_{0}, page_misses_{0}, object_hits_{0}, backend_bytes_{0}, uncached_bytes_{0},
      promotions_{0};
};

}  // namespace reservoir::s3
