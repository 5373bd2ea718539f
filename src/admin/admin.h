// The admin API on its own port: health, Prometheus metrics, persistence
// status, the persistence barrier and retry of parked objects. Everything but
// /health and /metrics needs "Authorization: Bearer <secret_key>".
#pragma once

#include "common/config.h"
#include "http/io.h"
#include "s3/engine.h"

namespace reservoir::admin {

// Returns the handler; references must outlive it.
http::Handler make_admin_handler(s3::Engine& engine, const Config& config, boost::asio::thread_pool& pool);

}  // namespace reservoir::admin
