// The `reservoir` command: `serve` runs a worker; more subcommands follow.
#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/serve.h"
#include "common/config.h"

int main(int argc, char** argv) {
  using namespace reservoir;
  CLI::App app{"Reservoir: an S3-compatible write-back and read cache in front of object stores"};
  app.require_subcommand(1);

  auto* serve = app.add_subcommand("serve", "Run a worker (S3 API, admin API, persister)");
  std::string config_file, data_dir, s3_listen, admin_listen, log_level;
  serve->add_option("-c,--config", config_file, "TOML configuration file (default: embedded defaults)");
  serve->add_option("--data-dir", data_dir, "Override server.data_dir");
  serve->add_option("--s3-listen", s3_listen, "Override server.s3_listen (host:port)");
  serve->add_option("--admin-listen", admin_listen, "Override server.admin_listen (host:port)");
  serve->add_option("--log-level", log_level, "debug, info, warn or error");

  CLI11_PARSE(app, argc, argv);

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
    return cli::serve(cfg);
  }
  return 0;
}
