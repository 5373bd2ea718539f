// `reservoir sync`, `reservoir persist-status` and `reservoir retry-parked`:
// clients of a running worker's admin API.
#pragma once

#include <string>

namespace reservoir::cli {

struct AdminTarget {
  std::string url = "http://127.0.0.1:9001";  // admin API
  std::string secret = "reservoir-secret";    // bearer token (the secret key)
};

// Waits (with a progress bar on a terminal) until every write acknowledged
// under PREFIX ("bucket/prefix") is persisted. Exit code: 0 done, 2 some
// objects are parked (listed), 1 error or timeout.
int sync_command(const AdminTarget& t, const std::string& prefix, bool wait, int timeout_s);
int persist_status_command(const AdminTarget& t, const std::string& prefix, bool json);
int retry_parked_command(const AdminTarget& t, const std::string& prefix);

// Cache management (docs/read-cache.md).
// Prefetches PREFIX into the cache with a progress bar; 0 done, 1 errors.
int load_command(const AdminTarget& t, const std::string& prefix, int concurrency);
// Drops clean cached data under PREFIX; 0 all freed, 2 some objects refused (dirty or pinned).
int free_command(const AdminTarget& t, const std::string& prefix);
int pin_command(const AdminTarget& t, const std::string& prefix, bool pin);
// DURATION like "90s", "10m", "2h", "1d"; "0" removes the TTL.
int ttl_command(const AdminTarget& t, const std::string& prefix, const std::string& duration, const std::string& action);
int stat_command(const AdminTarget& t, const std::string& path, bool json);

}  // namespace reservoir::cli
