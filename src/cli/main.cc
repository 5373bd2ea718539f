// The `reservoir` command: `serve` runs a worker; more subcommands follow.
#include <cstdio>
#include <CLI/CLI.hpp>

#include <iostream>

#include "bench/command.h"
#include "cli/admin_commands.h"
#include "cli/serve.h"
#include "common/config.h"

int main(int argc, char** argv) {
  using namespace reservoir;
  using cli::AdminTarget;
  CLI::App app{"Reservoir: an S3-compatible write-back and read cache in front of object stores"};
  app.require_subcommand(1);

  auto* serve = app.add_subcommand("serve", "Run a worker (S3 API, admin API, persister)");
  std::string config_file, data_dir, s3_listen, admin_listen, log_level;
  serve->add_option("-c,--config", config_file, "TOML configuration file (default: embedded defaults)");
  serve->add_option("--data-dir", data_dir, "Override server.data_dir");
  serve->add_option("--s3-listen", s3_listen, "Override server.s3_listen (host:port)");
  serve->add_option("--admin-listen", admin_listen, "Override server.admin_listen (host:port)");
  serve->add_option("--log-level", log_level, "debug, info, warn or error");

  AdminTarget target;
  if (const char* u = std::getenv("RESERVOIR_ADMIN_URL")) target.url = u;
  if (const char* k = std::getenv("RESERVOIR_SECRET_KEY")) target.secret = k;
  std::string admin_config;
  auto add_admin_opts = [&](CLI::App* c) {
    c->add_option("--admin", target.url, "Admin API URL (env RESERVOIR_ADMIN_URL)");
    c->add_option("--secret", target.secret, "Secret key, the admin bearer token (env RESERVOIR_SECRET_KEY)");
    c->add_option("-c,--config", admin_config, "Take the admin address and secret from this configuration file");
  };
  std::string prefix;
  bool wait = false, as_json = false;
  int timeout_s = 3600;
  auto* sync = app.add_subcommand("sync", "Wait until every acknowledged write under PREFIX (bucket/prefix) is persisted");
  sync->add_option("prefix", prefix, "bucket/prefix")->required();
  sync->add_flag("--wait", wait, "Wait (with a progress bar) instead of reporting once");
  sync->add_option("--timeout", timeout_s, "Seconds to wait at most");
  add_admin_opts(sync);
  auto* status = app.add_subcommand("persist-status", "Dirty, in-flight and parked objects under PREFIX");
  status->add_option("prefix", prefix, "bucket/prefix (default: everything)");
  status->add_flag("--json", as_json, "Print the admin API's JSON");
  add_admin_opts(status);
  auto* retry = app.add_subcommand("retry-parked", "Retry the parked objects under PREFIX");
  retry->add_option("prefix", prefix, "bucket/prefix (default: everything)");
  add_admin_opts(retry);

  // Cache management.
  int load_concurrency = 0;
  std::string ttl_duration, ttl_action = "free", stat_path;
  auto* load = app.add_subcommand("load", "Prefetch every object under PREFIX (bucket/prefix) into the cache");
  load->add_option("prefix", prefix, "bucket/prefix")->required();
  load->add_option("--concurrency", load_concurrency, "Objects fetched at once (default: cache.load_concurrency)");
  add_admin_opts(load);
  auto* free_cmd = app.add_subcommand("free", "Drop clean cached data under PREFIX (dirty and pinned data stay)");
  free_cmd->add_option("prefix", prefix, "bucket/prefix")->required();
  add_admin_opts(free_cmd);
  auto* pin = app.add_subcommand("pin", "Never evict data under PREFIX (kept across restarts)");
  pin->add_option("prefix", prefix, "bucket/prefix")->required();
  add_admin_opts(pin);
  auto* unpin = app.add_subcommand("unpin", "Let data under PREFIX be evicted again");
  unpin->add_option("prefix", prefix, "bucket/prefix")->required();
  add_admin_opts(unpin);
  auto* ttl = app.add_subcommand("ttl", "Free or delete objects under PREFIX a DURATION after their last write");
  ttl->add_option("prefix", prefix, "bucket/prefix")->required();
  ttl->add_option("duration", ttl_duration, "e.g. 90s, 10m, 2h, 1d; 0 removes the TTL")->required();
  ttl->add_option("--action", ttl_action, "free (drop from the cache) or delete (delete everywhere)")
      ->check(CLI::IsMember({"free", "delete"}));
  add_admin_opts(ttl);
  auto* stat = app.add_subcommand("stat", "What the cache holds of KEY (bucket/key): size, state, tier, pages, pin, ttl");
  stat->add_option("key", stat_path, "bucket/key")->required();
  stat->add_flag("--json", as_json, "Print the admin API's JSON");
  add_admin_opts(stat);

  bench::BenchCli bench_cli;
  auto* bench_cmd = bench::add_bench_command(app, bench_cli);

  CLI11_PARSE(app, argc, argv);

  if (!admin_config.empty()) {
    auto c = load_config_file(admin_config);
    if (!c.ok()) {
      std::cerr << "reservoir: " << c.status().message() << "\n";
      return 2;
    }
    target.url = "http://" + c->server.admin_listen;
    target.secret = c->auth.secret_key;
  }
  if (sync->parsed()) return cli::sync_command(target, prefix, wait, timeout_s);
  if (status->parsed()) return cli::persist_status_command(target, prefix, as_json);
  if (retry->parsed()) return cli::retry_parked_command(target, prefix);
  if (bench_cmd->parsed()) return bench::bench_command(bench_cli);
  if (load->parsed()) return cli::load_command(target, prefix, load_concurrency);
  if (free_cmd->parsed()) return cli::free_command(target, prefix);
  if (pin->parsed()) return cli::pin_command(target, prefix, true);
  if (unpin->parsed()) return cli::pin_command(target, prefix, false);
  if (ttl->parsed()) return cli::ttl_command(target, prefix, ttl_duration, ttl_action);
  if (stat->parsed()) return cli::stat_command(target, stat_path, as_json);

  if (serve->parsed()) {
    Config cfg;
    if (!config_file.empty()) {
      auto c = load_config_file(config_file);
      if (!c.ok()) {
        std::cerr << "reservoir: " << c.status().message() << "\n";
        return 2;
      }
      cfg = c.value();
    } else {
      cfg = default_config();
    }
    if (!data_dir.empty()) {
      // Derived defaults follow the overridden data directory.
      Config base;
      base.server = cfg.server;
      bool default_tiers = cfg.tiers.size() == 1 && cfg.tiers[0].path == cfg.server.data_dir + "/cache";
      bool default_mount = cfg.mounts.size() == 1 && cfg.mounts[0].ufs == "file://" + cfg.server.data_dir + "/ufs";
      cfg.server.data_dir = data_dir;
      if (default_tiers) cfg.tiers[0].path = data_dir + "/cache";
      if (default_mount) cfg.mounts[0].ufs = "file://" + data_dir + "/ufs";
    }
    if (!s3_listen.empty()) cfg.server.s3_listen = s3_listen;
    if (!admin_listen.empty()) cfg.server.admin_listen = admin_listen;
    if (!log_level.empty()) cfg.server.log_level = log_level;
    if (Status st = finalize_config(cfg); !st.ok()) {  // the flags are checked as the file is
      std::fprintf(stderr, "reservoir: %s\n", st.message().c_str());
      return 1;
    }
    return cli::serve(cfg);
  }
  return 0;
}
