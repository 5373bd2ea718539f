// The persister drains the dirty queue of each mount into its under store.
//
// Per mount: `concurrency` worker threads, a rate limiter for operations and
// bytes, the write `delay` (so overwrites coalesce), and retries with
// jittered exponential backoff. Per key, at most one upload is in flight and
// only the current version is uploaded; a version is marked persisted only if
// it is still current when its upload finishes, so an old version never lands
// after a newer one and a delete is never undone. Permanent failures park the
// object with its reason until retry_parked().
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ns/namespace.h"
#include "persist/rate_limiter.h"
#include "store/cache_store.h"

namespace reservoir::persist {

struct SyncResult {
  bool done = false;         // every write acknowledged before the call is persisted
  uint64_t pending = 0;      // still dirty or in flight
  std::vector<std::pair<std::string, std::string>> parked;  // "bucket/key", reason
};

// Latency of under-store calls, in fixed buckets (Prometheus histogram).
struct LatencyHistogram {
  static constexpr double kBounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
  static constexpr size_t kBuckets = sizeof(kBounds) / sizeof(kBounds[0]);
  uint64_t counts[kBuckets + 1] = {};  // last: +Inf
  double sum = 0;
  uint64_t total = 0;
  void add(double seconds);
};

struct MountStats {
  std::string mount;
  uint64_t queued = 0;
  uint64_t in_flight = 0;
  uint64_t persisted = 0;     // since start
  uint64_t retries = 0;
  uint64_t parked = 0;        // since start
  uint64_t throttled = 0;     // SlowDown / 503 answers from the backend
  double concurrency = 0;     // current upload concurrency (AIMD)
  int max_concurrency = 0;
  int64_t oldest_dirty_ms = 0;  // age of the oldest queued entry
  double recent_rate = 0;     // persisted per second over the last 10 s
  LatencyHistogram latency;   // under-store call latency
};

// Persistence state of a prefix, from the dirty and parked keyspaces: O(dirty).
struct PrefixSummary {
  uint64_t dirty_objects = 0;
  uint64_t dirty_bytes = 0;
  uint64_t tombstones = 0;
  int64_t oldest_dirty_age_ms = 0;
  std::vector<std::pair<std::string, std::string>> parked;  // "bucket/key", reason
};

class Persister {
 public:
  // Both references must outlive the Persister (owned by the server).
  Persister(store::CacheStore& store, ns::Namespace& ns);
  ~Persister();

  // Loads the dirty queue from the index (O(dirty)) and starts the workers.
  Status start();
  // Stops the workers; in-flight uploads finish first.
  void stop();
  // Waiting sync() calls answer now with what is still pending (the server
  // is stopping: a barrier must not hold the shutdown for its timeout).
  void stop_waiting() { closing_ = true; }

  // A dirty version of bucket/key was committed.
  void enqueue(const std::string& bucket, const std::string& key);
  // Waits until every write acknowledged under "bucket/prefix" before the call
  // is persisted, or parked, or the timeout passes. Held-back writes (delay)
  // under the prefix are released at once.
  SyncResult sync(const std::string& bucket, const std::string& prefix, std::chrono::milliseconds timeout);
  // Moves parked objects under the prefix back to the dirty queue.
  // `around`, when given, runs each key's retry (the engine holds the key's
  // write lock around it).
  using AroundKey = std::function<void(const std::string& bucket, const std::string& key, const std::function<void()>&)>;
  Result<uint64_t> retry_parked(const std::string& bucket, const std::string& prefix, const AroundKey& around = nullptr);
  std::vector<MountStats> stats();
  PrefixSummary summarize(const std::string& bucket, const std::string& prefix);

 private:
  struct Queue;
  void worker(Queue* q);
  // What a worker does with a key after processing it (applied once the key
  // is no longer in flight, so two uploads of one key never overlap).
  struct Next {
    bool again = false;
    std::chrono::milliseconds delay{0};
    int attempt = 0;
    bool throttled = false;  // the backend said SlowDown / 503
    bool uploaded = false;   // an upload completed
  };
  Next process(Queue* q, const std::string& bucket, const std::string& key, int attempt);
  Status upload(Queue* q, ns::Resolved& where, const std::string& bucket, const std::string& key,
                store::ObjectMeta& meta);
  void schedule(Queue* q, const std::string& full, std::chrono::steady_clock::time_point when, int attempt);
  Queue* queue_for(const std::string& bucket);

  store::CacheStore& store_;
  ns::Namespace& ns_;
  std::vector<std::unique_ptr<Queue>> queues_;
  std::atomic<bool> stopping_{false};  // read by the workers of every queue
  std::atomic<bool> closing_{false};   // sync() stops waiting
};

}  // namespace reservoir::persist
