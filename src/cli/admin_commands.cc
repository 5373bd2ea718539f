#include "cli/admin_commands.h"

#include <unistd.h>

#include <chrono>
#include <iostream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/units.h"
#include "http/client.h"
#include "s3/sigv4.h"

namespace reservoir::cli {

using nlohmann::json;

namespace {

Result<json> call(const AdminTarget& t, const std::string& method, const std::string& path, int timeout_s = 60) {
  auto opts = http::parse_endpoint(t.url);
  if (!opts.ok()) return opts.status();
  opts->io_timeout = std::chrono::seconds(timeout_s + 30);
  http::HttpClient client(opts.value());
  std::string body;
  auto r = client.fetch(method, path, {{"Authorization", "Bearer " + t.secret}}, &body);
  if (!r.ok()) return Status(r.status().code(), fmt::format("cannot reach the admin API at {}: {}", t.url, r.status().message()));
  if (r->status != 200) return unavailable(fmt::format("admin API answered {}: {}", r->status, body));
  try {
    return json::parse(body);
  } catch (const std::exception& e) {
    return internal_error(std::string("unparsable answer from the admin API: ") + e.what());
  }
}

std::string q(const std::string& prefix) { return s3::uri_encode(prefix, true); }

void print_parked(const json& parked) {
  for (auto& p : parked) std::cout << "  parked: " << p.value("key", "") << ": " << p.value("reason", "") << "\n";
}

}  // namespace

int sync_command(const AdminTarget& t, const std::string& prefix, bool wait, int timeout_s) {
  bool tty = isatty(STDERR_FILENO);
  auto start = call(t, "GET", "/admin/v1/persist-status?prefix=" + q(prefix));
  if (!start.ok()) {
    std::cerr << "reservoir: " << start.status().message() << "\n";
    return 1;
  }
  uint64_t total = (*start)["dirty_objects"].get<uint64_t>() + (*start)["tombstones"].get<uint64_t>();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  for (;;) {
    // Short server-side waits so the progress bar moves.
    int step = wait ? 1 : 0;
    auto r = call(t, "POST", fmt::format("/admin/v1/sync?prefix={}&wait={}&timeout={}", q(prefix), wait ? "true" : "false", step));
    if (!r.ok()) {
      std::cerr << "\nreservoir: " << r.status().message() << "\n";
      return 1;
    }
    uint64_t pending = (*r)["pending"].get<uint64_t>();
    total = std::max(total, pending);
    if (tty && wait) {
      uint64_t done = total - pending;
      int width = 40;
      int fill = total ? static_cast<int>(width * done / total) : width;
      fmt::print(stderr, "\r[{}{}] {}/{} persisted", std::string(fill, '#'), std::string(width - fill, ' '), done, total);
    }
    bool finished = pending == 0;
    if (finished || !wait || std::chrono::steady_clock::now() >= deadline) {
      if (tty && wait) fmt::print(stderr, "\n");
      if (!(*r)["parked"].empty()) {
        std::cout << "not persisted: " << (*r)["parked"].size() << " parked object(s) under '" << prefix << "'\n";
        print_parked((*r)["parked"]);
        return 2;
      }
      if (finished) {
        std::cout << "persisted: every acknowledged write under '" << prefix << "'\n";
        return 0;
      }
      std::cout << pending << " object(s) under '" << prefix << "' not persisted yet\n";
      return 1;
    }
  }
}

int persist_status_command(const AdminTarget& t, const std::string& prefix, bool as_json) {
  auto r = call(t, "GET", "/admin/v1/persist-status?prefix=" + q(prefix));
  if (!r.ok()) {
    std::cerr << "reservoir: " << r.status().message() << "\n";
    return 1;
  }
  if (as_json) {
    std::cout << r->dump(2) << "\n";
    return 0;
  }
  const json& j = *r;
  fmt::print("prefix:        '{}'\n", prefix);
  fmt::print("dirty:         {} objects, {}\n", j["dirty_objects"].get<uint64_t>(), format_size(j["dirty_bytes"].get<uint64_t>()));
  fmt::print("deletes:       {} pending\n", j["tombstones"].get<uint64_t>());
  fmt::print("oldest dirty:  {:.1f} s\n", j["oldest_dirty_age_ms"].get<int64_t>() / 1000.0);
  fmt::print("parked:        {}\n", j["parked"].size());
  print_parked(j["parked"]);
  for (auto& m : j["mounts"])
    fmt::print("mount {}: queued {}, in flight {}, persisted {}, retries {}, throttled {}, concurrency {:.1f}/{}, "
               "rate {:.1f}/s, backend latency avg {:.1f} ms\n",
               m["mount"].get<std::string>(), m["queued"].get<uint64_t>(), m["in_flight"].get<uint64_t>(),
               m["persisted"].get<uint64_t>(), m["retries"].get<uint64_t>(), m["throttled"].get<uint64_t>(),
               m["concurrency"].get<double>(), m["max_concurrency"].get<int>(), m["recent_persist_rate"].get<double>(),
               m["backend_latency_avg_ms"].get<double>());
  return 0;
}

int retry_parked_command(const AdminTarget& t, const std::string& prefix) {
  auto r = call(t, "POST", "/admin/v1/retry-parked?prefix=" + q(prefix));
  if (!r.ok()) {
    std::cerr << "reservoir: " << r.status().message() << "\n";
    return 1;
  }
  std::cout << "retried " << (*r)["retried"].get<uint64_t>() << " parked object(s)\n";
  return 0;
}

}  // namespace reservoir::cli
