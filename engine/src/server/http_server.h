#pragma once
// The OpenAI-compatible HTTP front: routes, API-key check, body-size limit and timeouts, and
// the translation between HTTP requests and scheduler jobs (SSE for streamed answers). Runs
// cpp-httplib's thread pool; the model itself is only touched by the scheduler's thread.
#include <cstddef>
#include <memory>
#include <string>
#include <thread>

#include "server/metrics.h"
#include "server/scheduler.h"
#include "server/served_model.h"

namespace httplib {
class Server;
}

namespace moe::server {

struct ServerOptions {
    std::string host = "127.0.0.1";
    int port = 8080;      // 0 = any free port (see HttpServer::port())
    std::string api_key;  // empty = no key; then only a loopback host is allowed
    size_t max_body_bytes = size_t(1) << 20;  // larger bodies get 413
    int read_timeout_s = 30;   // a client that sends nothing for this long is dropped
    int write_timeout_s = 60;  // a client that reads nothing for this long is dropped
    // Longest wait for a non-streamed answer or between two streamed events before the request
    // is cancelled (a stuck model must not hold a connection forever).
    int generation_timeout_s = 600;
    int http_threads = 0;  // 0 = enough for a full batch and queue plus a few
};

// 127.0.0.0/8, ::1 and "localhost".
bool is_loopback_host(const std::string& host);
// Throws moe::Error when the options are unsafe or invalid: a non-loopback host without an API
// key (anyone who reaches the machine could use it), a port out of range, a zero body limit.
void check_server_options(const ServerOptions& options);

class HttpServer {
  public:
    // The served model, scheduler and metrics must outlive the server.
    HttpServer(const ServedModel& model, Scheduler& scheduler, Metrics& metrics,
               ServerOptions options);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Binds the socket; throws moe::Error (options refused, address in use). port() is known
    // afterwards.
    void bind();
    int port() const { return port_; }
    // Serves until stop(); call after bind(), on any thread.
    void listen();
    // listen() on a thread of its own (tests).
    void start_background();
    // Stops listening and waits for the background thread. Requests in flight are cut.
    void stop();

  private:
    void install_routes();

    const ServedModel& model_;
    Scheduler& scheduler_;
    Metrics& metrics_;
    ServerOptions options_;
    std::unique_ptr<httplib::Server> http_;
    int port_ = 0;
    std::thread thread_;
};

}  // namespace moe::server
