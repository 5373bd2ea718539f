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

}  // namespace reservoir::cli
