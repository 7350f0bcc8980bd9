#include "api/remote_chat.h"

#include <httplib.h>

#include <cstdlib>

#include "core/error.h"

namespace moe {

namespace {

// The server's own words from an OpenAI error body, else the start of the body.
std::string server_message(const std::string& body) {
    const auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_object() && j.contains("error")) {
        const auto& e = j["error"];
        if (e.is_object() && e.contains("message") && e["message"].is_string())
            return e["message"].get<std::string>();
        if (e.is_string()) return e.get<std::string>();
    }
    return body.substr(0, 200);
}

std::string connect_failure(const std::string& url, httplib::Error e) {
    std::string why = httplib::to_string(e);
    if (e == httplib::Error::Connection) why = "connection refused or host unreachable";
    if (e == httplib::Error::ConnectionTimeout) why = "no answer within 5 s";
    if (e == httplib::Error::Read) why = "the connection broke or the answer took too long";
    return url + ": cannot connect (" + why + "); is the server running, and is the address right?";
}

// Throws for an answer other than 200: a refused key said as such (of the endpoint `url`),
// else the server's words about `where`, followed by `hint`.
void require_ok(const std::string& url, const std::string& where, int status,
                const std::string& body, const std::string& hint = {}) {
    if (status == 401 || status == 403)
        throw Error(url + ": the server refused the API key (HTTP " + std::to_string(status) +
                    ": " + server_message(body) + ")");
    if (status != 200)
        throw Error(where + ": HTTP " + std::to_string(status) + ": " + server_message(body) +
                    hint);
}

}  // namespace

httplib::Client RemoteChat::client() const {
    httplib::Client cli(host_, port_);
    cli.set_connection_timeout(5, 0);
    cli.set_read_timeout(endpoint_.timeout_seconds, 0);
    return cli;
}

RemoteChat::RemoteChat(RemoteEndpoint endpoint) : endpoint_(std::move(endpoint)) {
    const std::string& u = endpoint_.url;
    if (u.starts_with("https://"))
        throw Error(u + ": https endpoints are not supported; reach the server over plain HTTP " +
                    "(loopback, a VPN or an SSH tunnel: ssh -L 30000:localhost:30000 host)");
    if (!u.starts_with("http://"))
        throw Error(u + ": expected an address such as http://127.0.0.1:30000/v1");
    std::string rest = u.substr(7);
    const size_t slash = rest.find('/');
    std::string path = slash == std::string::npos ? "" : rest.substr(slash);
    std::string authority = rest.substr(0, slash);
    const size_t colon = authority.rfind(':');
    if (colon != std::string::npos && authority.find(']') == std::string::npos) {
        const std::string p = authority.substr(colon + 1);
        char* end = nullptr;
        const long port = std::strtol(p.c_str(), &end, 10);
        if (p.empty() || *end || port < 1 || port > 65535)
            throw Error(u + ": '" + p + "' is not a port number");
        port_ = int(port);
        authority = authority.substr(0, colon);
    }
    if (authority.empty()) throw Error(u + ": no host name");
    host_ = authority;
    while (!path.empty() && path.back() == '/') path.pop_back();
    prefix_ = path.ends_with("/v1") ? path : path + "/v1";
}

std::vector<std::string> RemoteChat::models() const {
    httplib::Client cli = client();
    httplib::Headers headers;
    if (!endpoint_.api_key.empty()) headers.emplace("Authorization", "Bearer " + endpoint_.api_key);
    const auto r = cli.Get(prefix_ + "/models", headers);
    if (!r) throw Error(connect_failure(endpoint_.url, r.error()));
    require_ok(endpoint_.url, endpoint_.url + prefix_ + "/models", r->status, r->body,
               " (is this an OpenAI-compatible server? the address usually ends in /v1)");
    const auto j = nlohmann::json::parse(r->body, nullptr, false);
    if (!j.is_object() || !j.contains("data") || !j["data"].is_array())
        throw Error(endpoint_.url + ": /models answered without a model list");
    std::vector<std::string> ids;
    for (const auto& m : j["data"])
        if (m.is_object() && m.contains("id") && m["id"].is_string()) ids.push_back(m["id"]);
    return ids;
}

std::string RemoteChat::check() const {
    try {
        const auto ids = models();
        return ids.empty() ? endpoint_.url + ": the server lists no models" : "";
    } catch (const Error& e) {
        return e.what();
    }
}

RemoteAnswer RemoteChat::chat(const std::string& model, const nlohmann::ordered_json& messages,
                              const RemoteSampling& s,
                              const std::function<bool(const std::string&)>& on_text) const {
    nlohmann::ordered_json body = {{"model", model},
                                   {"messages", messages},
                                   {"stream", true},
                                   {"stream_options", {{"include_usage", true}}},
                                   {"temperature", s.temperature},
                                   {"top_p", s.top_p},
                                   {"max_tokens", s.max_tokens}};
    if (s.seed) body["seed"] = *s.seed;
    if (!s.stop.empty()) body["stop"] = s.stop;

    RemoteAnswer answer;
    bool cancelled = false;
    std::string raw, pending;  // everything received; what is not yet a whole event
    httplib::Request req;
    req.method = "POST";
    req.path = prefix_ + "/chat/completions";
    req.headers.emplace("Content-Type", "application/json");
    req.headers.emplace("Accept", "text/event-stream");
    if (!endpoint_.api_key.empty())
        req.headers.emplace("Authorization", "Bearer " + endpoint_.api_key);
    req.body = body.dump();
    // Server-sent events: "data: {chunk}\n\n" ... "data: [DONE]\n\n".
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
        raw.append(data, n);
        pending.append(data, n);
        size_t end;
        while ((end = pending.find("\n\n")) != std::string::npos) {
            const std::string event = pending.substr(0, end);
            pending.erase(0, end + 2);
            if (!event.starts_with("data: ")) continue;
            const std::string payload = event.substr(6);
            if (payload == "[DONE]") continue;
            const auto j = nlohmann::json::parse(payload, nullptr, false);
            if (!j.is_object()) continue;
            if (j.contains("usage") && j["usage"].is_object()) {
                answer.prompt_tokens = j["usage"].value("prompt_tokens", int64_t(0));
                answer.completion_tokens = j["usage"].value("completion_tokens", int64_t(0));
            }
            if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty())
                continue;
            const auto& c = j["choices"][0];
            if (c.contains("finish_reason") && c["finish_reason"].is_string())
                answer.finish_reason = c["finish_reason"];
            if (c.contains("delta") && c["delta"].is_object() && c["delta"].contains("content") &&
                c["delta"]["content"].is_string()) {
                const std::string piece = c["delta"]["content"];
                answer.text += piece;
                if (on_text && !piece.empty() && !on_text(piece)) {
                    cancelled = true;
                    return false;
                }
            }
        }
        return true;
    };
    httplib::Client cli = client();
    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    const bool ok = cli.send(req, res, err);
    if (cancelled) {
        answer.finish_reason = "cancelled";
        return answer;
    }
    if (!ok && res.status <= 0) throw Error(connect_failure(endpoint_.url, err));
    require_ok(endpoint_.url, endpoint_.url, res.status, raw.empty() ? res.body : raw);
    return answer;
}

}  // namespace moe
