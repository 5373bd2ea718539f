#include "cli/serve.h"

#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <thread>

#include "admin/admin.h"
#include "common/log.h"
#include "http/server.h"
#include "ns/namespace.h"
#include "persist/persister.h"
#include "s3/engine.h"
#include "s3/handlers.h"
#include "store/cache_store.h"
#include "store/journal_index.h"

namespace reservoir::cli {

namespace asio = boost::asio;

namespace {

// Waits for in-flight requests to finish (up to the deadline), then stops.
void drain_then_stop(asio::io_context& ioc, http::Server& server, std::chrono::steady_clock::time_point deadline) {
  auto timer = std::make_shared<asio::steady_timer>(ioc, std::chrono::milliseconds(50));
  timer->async_wait([&ioc, &server, deadline, timer](const boost::system::error_code&) {
    if (server.active_requests() == 0 || std::chrono::steady_clock::now() >= deadline) {
      if (server.active_requests() > 0) LOG_WARN("drain timeout: {} requests still running", server.active_requests());
      ioc.stop();
      return;
    }
    drain_then_stop(ioc, server, deadline);
  });
}

}  // namespace

int serve(Config config) {
  init_logging(config.server.log_level);
  LOG_INFO("Reservoir starting with configuration:\n  {}", describe_config(config));
  std::error_code ec;
  std::filesystem::create_directories(config.server.data_dir, ec);
  if (ec) {
    LOG_ERROR("cannot create data_dir {}: {}", config.server.data_dir, ec.message());
    return 1;
  }
  // Synced index writes go through the journal (with durability "none" only
  // to apply one left by an earlier run), so RocksDB needs no log of its own.
  std::string journal = config.server.data_dir + "/index.journal";
  bool journaled = config.server.durability == Durability::fsync || std::filesystem::exists(journal);
  auto index = store::open_rocks_index(config.server.data_dir + "/index", !journaled);
  if (index.ok() && journaled)
    index = store::open_journaled_index(std::move(index.value()), journal, config.server.index_journal_bytes);
  if (!index.ok()) {
    LOG_ERROR("{}", index.status().to_string());
    return 1;
  }
  store::StoreOptions sopts;
  sopts.tiers = config.tiers;
  sopts.durable = config.server.durability == Durability::fsync;
  sopts.inline_max = static_cast<size_t>(config.server.inline_max_bytes);
  sopts.policy = config.cache.eviction == "lfu" ? cache::Policy::lfu : cache::Policy::lru;
  sopts.high_watermark = config.cache.high_watermark;
  sopts.low_watermark = config.cache.low_watermark;
  sopts.memory = config.cache.memory;
  sopts.max_metadata_records = config.cache.max_metadata_records;
  auto store = store::CacheStore::open(sopts, std::move(index.value()));
  if (!store.ok()) {
    LOG_ERROR("cannot open the cache store: {}", store.status().to_string());
    return 1;
  }
  auto names = ns::Namespace::create(config);
  if (!names.ok()) {
    LOG_ERROR("{}", names.status().to_string());
    return 1;
  }
  persist::Persister persister(**store, **names);
  s3::Engine engine(**store, **names, persister, config);
  Status st = engine.load_rules();
  if (!st.ok()) {
    LOG_ERROR("cannot load the path rules: {}", st.to_string());
    return 1;
  }
  (*store)->start_evictor();
  engine.start_maintenance();
  st = persister.start();
  if (!st.ok()) {
    LOG_ERROR("cannot start the persister: {}", st.to_string());
    return 1;
  }

  int threads = config.server.threads > 0 ? config.server.threads : static_cast<int>(std::thread::hardware_concurrency());
  asio::io_context ioc(threads);
  asio::thread_pool pool(static_cast<size_t>(std::max(1, config.server.io_threads)));
  s3::S3Service s3svc(engine, config, pool);
  http::Limits limits{config.server.max_header_bytes, config.server.max_connections, config.server.header_timeout,
                      config.server.idle_timeout};
  http::Server server(ioc, limits);
  auto s3_handler = [&s3svc](const http::Request& r, http::BodyReader& b, http::ResponseWriter& w) {
    return s3svc.handle(r, b, w);
  };
  auto port = server.listen(config.server.s3_listen, s3_handler);
  if (!port.ok()) {
    LOG_ERROR("{}", port.status().to_string());
    return 1;
  }
  auto host = http::split_host_port(config.server.s3_listen)->first;
  LOG_INFO("S3 API listening on http://{}:{}", host, *port);
  std::unique_ptr<asio::ssl::context> tls;
  if (!config.server.tls_listen.empty()) {
    tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    boost::system::error_code tec;
    tls->use_certificate_chain_file(config.server.tls_cert, tec);
    if (!tec) tls->use_private_key_file(config.server.tls_key, asio::ssl::context::pem, tec);
    if (tec) {
      LOG_ERROR("cannot load TLS certificate/key: {}", tec.message());
      return 1;
    }
    auto tport = server.listen(config.server.tls_listen, s3_handler, tls.get());
    if (!tport.ok()) {
      LOG_ERROR("{}", tport.status().to_string());
      return 1;
    }
    LOG_INFO("S3 API (TLS) listening on https://{}:{}", http::split_host_port(config.server.tls_listen)->first, *tport);
  }
  admin::CacheAdmin cache_admin(engine, config);
  auto aport = server.listen(config.server.admin_listen, admin::make_admin_handler(engine, config, pool, cache_admin));
  if (!aport.ok()) {
    LOG_ERROR("{}", aport.status().to_string());
    return 1;
  }
  LOG_INFO("admin API listening on http://{}:{}", http::split_host_port(config.server.admin_listen)->first, *aport);
  if (config.default_credentials())
    LOG_INFO("credentials: access key '{}', secret key '{}' (the defaults: set [auth] in the configuration)",
             config.auth.access_key, config.auth.secret_key);
  else
    LOG_INFO("credentials: access key '{}' (secret from the configuration)", config.auth.access_key);

  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  // The first signal drains and stops; a second one stops at once (as a
  // kill -9 would: nothing acknowledged is lost, the next start checks the
  // recent data).
  std::atomic<bool> draining{false};
  std::function<void(const boost::system::error_code&, int)> on_signal = [&](const boost::system::error_code& e,
                                                                             int sig) {
    if (e) return;
    if (draining.exchange(true)) {
      LOG_WARN("signal {} again: stopping at once", sig);
      std::_Exit(1);
    }
    LOG_INFO("signal {}: draining (up to {} ms; a second signal stops at once)", sig,
             config.server.drain_timeout.count());
    server.begin_drain();
    persister.stop_waiting();  // a waiting sync barrier answers now (done: false), within the drain
    drain_then_stop(ioc, server, std::chrono::steady_clock::now() + config.server.drain_timeout);
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);

  std::vector<std::thread> workers;
  for (int i = 1; i < threads; ++i) workers.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : workers) t.join();
  // The rest of the stop runs outside the loop: a signal now ends the
  // process at once (the default action).
  boost::system::error_code ignored;
  signals.clear(ignored);
  pool.join();
  engine.stop_maintenance();
  persister.stop();
  st = (*store)->close();
  if (!st.ok()) LOG_WARN("cannot write the last sync point: {} (the next start checks recent data)", st.to_string());
  LOG_INFO("stopped");
  return 0;
}

}  // namespace reservoir::cli
