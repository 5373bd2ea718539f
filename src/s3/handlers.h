// The S3 HTTP front: authenticates, parses and routes each request to the
// engine, and writes S3's XML, headers and errors.
#pragma once

#include <memory>

#include "common/config.h"
#include "http/io.h"
#include "s3/engine.h"

namespace reservoir::s3 {

class S3Service {
 public:
  // References must outlive the service. `pool` runs blocking engine calls.
  S3Service(Engine& engine, const Config& config, boost::asio::thread_pool& pool);
  http::awaitable<void> handle(const http::Request& req, http::BodyReader& body, http::ResponseWriter& resp);

  Engine& engine() { return engine_; }
  boost::asio::thread_pool& pool() { return pool_; }
  const Config& config() const { return config_; }

 private:
  Engine& engine_;
  const Config& config_;
  boost::asio::thread_pool& pool_;
};

}  // namespace reservoir::s3
