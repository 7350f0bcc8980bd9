#include "server/http_server.h"

#include <httplib.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <optional>

#include "core/error.h"
#include "server/api_error.h"
#include "server/openai_protocol.h"

namespace moe::server {

namespace {

using Clock = std::chrono::steady_clock;

void send_error(httplib::Response& res, const ApiError& e) {
    res.status = e.status;
    res.set_content(e.to_json(), "application/json");
}

// The route a path belongs to, for the metrics' labels (raw paths would let clients create
// unbounded label sets).
std::string endpoint_label(const std::string& path) {
    for (const char* known :
         {"/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics"}) {
        if (path == known) return known;
    }
    if (path.starts_with("/v1/models/")) return "/v1/models/{id}";
    return "other";
}

// Compares without an early exit, so that response times do not reveal how much of a guessed
// key was right.
bool same_key(const std::string& given, const std::string& key) {
    if (key.empty()) return false;
    unsigned diff = unsigned(given.size() != key.size());
    for (size_t i = 0; i < given.size(); ++i)
        diff |= unsigned(uint8_t(given[i]) ^ uint8_t(key[i % key.size()]));
    return diff == 0;
}

}  // namespace

bool is_loopback_host(const std::string& host) {
    if (host == "localhost" || host == "::1" || host == "[::1]") return true;
    in_addr a{};
    if (inet_pton(AF_INET, host.c_str(), &a) == 1) return (ntohl(a.s_addr) >> 24) == 127;
    return false;
}

void check_server_options(const ServerOptions& o) {
    if (o.host.empty()) throw Error("--host must not be empty");
    if (!is_loopback_host(o.host) && o.api_key.empty()) {
        throw Error("refusing to listen on '" + o.host +
                    "' without an API key: anyone who can reach this machine could use the "
                    "model. Pass --api-key KEY (clients send it as 'Authorization: Bearer KEY'), "
                    "or listen on 127.0.0.1");
    }
    if (o.port < 0 || o.port > 65535)
        throw Error("--port must be between 0 and 65535, got " + std::to_string(o.port));
    if (o.max_body_bytes == 0) throw Error("the request body limit must be at least 1 byte");
    if (o.read_timeout_s < 1 || o.write_timeout_s < 1 || o.generation_timeout_s < 1)
        throw Error("timeouts must be at least 1 second");
}

HttpServer::HttpServer(const ServedModel& model, Scheduler& scheduler, Metrics& metrics,
                       ServerOptions options)
    : model_(model),
      scheduler_(scheduler),
      metrics_(metrics),
      options_(std::move(options)),
      http_(std::make_unique<httplib::Server>()) {
    check_server_options(options_);
    install_routes();
}

HttpServer::~HttpServer() {
    stop();
}

void HttpServer::install_routes() {
    httplib::Server& s = *http_;
    const SchedulerOptions& so = scheduler_.options();
    // Each streaming request holds a thread for its whole answer: enough for a full batch and
    // queue (those beyond get 429 rather than waiting unseen), plus a few for /health & co.
    const size_t threads = options_.http_threads > 0
                               ? size_t(options_.http_threads)
                               : size_t(std::min(256, so.max_batch + so.max_queue + 4));
    s.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    // The library's default also sets SO_REUSEPORT, which lets a second server (any process of
    // the same user) bind the same port and take a share of the connections: keep only
    // SO_REUSEADDR (a restart need not wait for TIME_WAIT), so that a taken port is an error.
    s.set_socket_options([](int sock) {
        int yes = 1;
        setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    s.set_payload_max_length(options_.max_body_bytes);
    s.set_read_timeout(options_.read_timeout_s, 0);
    s.set_write_timeout(options_.write_timeout_s, 0);
    s.set_keep_alive_timeout(5);

    s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
        using R = httplib::Server::HandlerResponse;
        if (req.path == "/health" || options_.api_key.empty()) return R::Unhandled;
        const std::string auth = req.get_header_value("Authorization");
        const std::string prefix = "Bearer ";
        if (!auth.starts_with(prefix) || !same_key(auth.substr(prefix.size()), options_.api_key)) {
            send_error(res, ApiError::unauthorized(
                                auth.empty() ? "Missing API key: send 'Authorization: Bearer KEY'"
                                             : "Incorrect API key"));
            return R::Handled;
        }
        return R::Unhandled;
    });
    // Statuses the library sets itself (413 body too large, 404 unknown path, 400 bad
    // request line) get OpenAI's error body too; handlers' own errors already have one.
    s.set_error_handler(
        httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
            using R = httplib::Server::HandlerResponse;
            if (!res.body.empty()) return R::Unhandled;
            send_error(res, error_for_status(res.status));
            return R::Handled;
        }));
    s.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
            std::string what = "unknown error";
            try {
                if (ep) std::rethrow_exception(ep);
            } catch (const std::exception& e) {
                what = e.what();
            } catch (...) {
            }
            send_error(res, ApiError::internal("internal error: " + what));
        });
    s.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
        metrics_.count_request(endpoint_label(req.path), res.status);
    });

    s.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
        if (scheduler_.shutting_down()) {
            res.status = 503;
            res.set_content(R"({"status":"shutting_down"})", "application/json");
            return;
        }
        res.set_content(dump_json({{"status", "ok"},
                                   {"model", model_.name},
                                   {"active", metrics_.active()},
                                   {"queued", metrics_.queue_depth()}}),
                        "application/json");
    });
    s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
        res.set_content(metrics_.prometheus(), "text/plain; version=0.0.4");
    });
    s.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
        res.set_content(dump_json(models_json(model_.name, model_.created)), "application/json");
    });
    s.Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
        const std::string id = req.matches[1];
        if (id != model_.name) return send_error(res, ApiError::model_not_found(id, model_.name));
        res.set_content(dump_json(models_json(model_.name, model_.created)["data"][0]),
                        "application/json");
    });

    const auto generation = [this](const httplib::Request& req, httplib::Response& res, bool chat) {
        if (scheduler_.shutting_down())
            return send_error(res, ApiError::unavailable("The server is shutting down"));
        ParsedRequest p;
        GenerationJob job;
        try {
            p = chat ? parse_chat_request(req.body, model_.default_sampling)
                     : parse_completion_request(req.body, model_.default_sampling);
            if (p.model != model_.name)
                throw ApiException(ApiError::model_not_found(p.model, model_.name));
            job = model_.make_job(p);
        } catch (const ApiException& e) {
            return send_error(res, e.error());
        }
        ApiError refused;
        std::shared_ptr<RequestStream> stream = scheduler_.submit(std::move(job), refused);
        if (!stream) return send_error(res, refused);
        const ResponseContext ctx{new_response_id(chat), model_.name, unix_now()};
        const auto timeout = std::chrono::seconds(options_.generation_timeout_s);

        if (!p.stream) {
            std::string text;
            StreamEvent ev;
            auto last = Clock::now();
            for (;;) {
                if (!stream->next(ev, std::chrono::milliseconds(500))) {
                    if (Clock::now() - last > timeout) {
                        stream->cancel();
                        return send_error(res, {504, "The model produced nothing for too long",
                                                "server_error", "", "timeout"});
                    }
                    continue;
                }
                last = Clock::now();
                if (ev.kind == StreamEvent::Kind::Text) {
                    text += ev.text;
                } else if (ev.kind == StreamEvent::Kind::Error) {
                    return send_error(res, ev.error);
                } else {
                    res.set_content(
                        dump_json(completion_json(ctx, chat, text, ev.finish, ev.usage)),
                        "application/json");
                    return;
                }
            }
        }

        // Server-sent events: one chunk per piece of text, the closing chunk with the finish
        // reason, the usage chunk when asked for, then [DONE].
        struct State {
            bool opened = false;
            Clock::time_point last = Clock::now();
        };
        auto state = std::make_shared<State>();
        res.set_header("Cache-Control", "no-cache");
        res.set_header("X-Accel-Buffering", "no");
        const bool include_usage = p.include_usage;
        res.set_chunked_content_provider(
            "text/event-stream",
            [stream, state, ctx, chat, include_usage, timeout](size_t, httplib::DataSink& sink) {
                const auto send = [&sink](const std::string& s) {
                    return sink.write(s.data(), s.size());
                };
                if (!state->opened) {
                    state->opened = true;
                    // OpenAI opens a chat stream with the assistant role and empty content.
                    return !chat || send(sse_event(chunk_json(ctx, chat, "", true, std::nullopt)));
                }
                StreamEvent ev;
                if (!stream->next(ev, std::chrono::milliseconds(250))) {
                    if (Clock::now() - state->last <= timeout) return true;  // asked again
                    stream->cancel();
                    ev.kind = StreamEvent::Kind::Error;
                    ev.error = {504, "The model produced nothing for too long", "server_error", "",
                                "timeout"};
                }
                state->last = Clock::now();
                bool ok = true;
                if (ev.kind == StreamEvent::Kind::Text) {
                    return send(sse_event(chunk_json(ctx, chat, ev.text, false, std::nullopt)));
                } else if (ev.kind == StreamEvent::Kind::Error) {
                    // Mid-stream the status is sent already; OpenAI's clients raise on an
                    // event that carries an error object.
                    ok = send("data: " + ev.error.to_json() + "\n\n");
                } else {
                    ok = send(sse_event(chunk_json(ctx, chat, "", false, ev.finish)));
                    if (ok && include_usage)
                        ok = send(sse_event(usage_chunk_json(ctx, chat, ev.usage)));
                    ok = ok && send("data: [DONE]\n\n");
                }
                sink.done();
                return ok;
            },
            // Also called when the client went away mid-answer: stop spending steps on it.
            [stream](bool) { stream->cancel(); });
    };
    s.Post("/v1/chat/completions",
           [generation](const httplib::Request& req, httplib::Response& res) {
               generation(req, res, true);
           });
    s.Post("/v1/completions", [generation](const httplib::Request& req, httplib::Response& res) {
        generation(req, res, false);
    });
}

void HttpServer::bind() {
    httplib::Server& s = *http_;
    if (options_.port == 0) {
        port_ = s.bind_to_any_port(options_.host);
        if (port_ <= 0) throw Error("could not listen on " + options_.host + " (any port)");
    } else {
        if (!s.bind_to_port(options_.host, options_.port)) {
            throw Error("could not listen on " + options_.host + ":" +
                        std::to_string(options_.port) +
                        " (is the port in use? --port 0 picks a free one)");
        }
        port_ = options_.port;
    }
}

void HttpServer::listen() {
    http_->listen_after_bind();
}

void HttpServer::start_background() {
    thread_ = std::thread([this] { listen(); });
    // listen_after_bind sets is_running() only once it is inside its accept loop.
    for (int i = 0; i < 500 && !http_->is_running(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
}

void HttpServer::stop() {
    if (http_) http_->stop();
    if (thread_.joinable()) thread_.join();
}

}  // namespace moe::server
