#pragma once
// A chat against a remote OpenAI-compatible endpoint instead of the local engine — SGLang with
// KTransformers' kernels, vLLM, llama-server or another MoE Studio — for users who outgrow one
// machine: its model list, answers streamed piece by piece with stop strings and the server's
// token counts, and a connection check whose message says what to fix. Plain HTTP (a remote
// server is reached over loopback, a VPN or an SSH tunnel).
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace httplib {
class Client;
}

namespace moe {

struct RemoteEndpoint {
    std::string url;      // "http://host:port" or "http://host:port/v1" (any path prefix)
    std::string api_key;  // sent as "Authorization: Bearer KEY" when set
    int timeout_seconds = 120;
};

struct RemoteSampling {
    double temperature = 0.7;
    double top_p = 1.0;
    int max_tokens = 512;
    std::optional<int64_t> seed;
    std::vector<std::string> stop;
};

struct RemoteAnswer {
    std::string text;
    std::string finish_reason;  // "stop", "length", ... ("cancelled" when on_text said stop)
    int64_t prompt_tokens = 0, completion_tokens = 0;  // the server's usage (0 if it sent none)
};

class RemoteChat {
  public:
    // Throws moe::Error for a URL that is not http://HOST[:PORT][/PATH].
    explicit RemoteChat(RemoteEndpoint endpoint);

    // GET /v1/models: the ids the server serves. Throws moe::Error saying whether the server
    // could not be reached, refused the key, or answered something else.
    std::vector<std::string> models() const;
    // models() as a test: "" when it works, else its message (for the UI's "Test connection").
    std::string check() const;
    // POST /v1/chat/completions, streamed: `on_text` gets each piece as it arrives and may
    // return false to stop (the connection is closed, the answer kept so far returned).
    // `messages`: [{"role": ..., "content": ...}]. Throws moe::Error as models() does.
    RemoteAnswer chat(const std::string& model, const nlohmann::ordered_json& messages,
                      const RemoteSampling& sampling,
                      const std::function<bool(const std::string& piece)>& on_text) const;

    const std::string& url() const { return endpoint_.url; }

  private:
    httplib::Client client() const;  // with this endpoint's timeouts

    RemoteEndpoint endpoint_;
    std::string host_;
    int port_ = 80;
    std::string prefix_;  // path up to and including "/v1"
};

}  // namespace moe
