#include "server/openai_protocol.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "server/api_error.h"

namespace moe::server {

namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& param, const std::string& message) {
    throw ApiException(ApiError::bad_request(message, param));
}

json parse_body(const std::string& body) {
    json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded())
        throw ApiException(
            ApiError::bad_request("The request body is not valid JSON", "", "invalid_json"));
    if (!j.is_object()) bad("", "The request body must be a JSON object");
    return j;
}

// The field when present and not null.
const json* field(const json& j, const char* name) {
    const auto it = j.find(name);
    return it == j.end() || it->is_null() ? nullptr : &*it;
}

double number(const json& j, const char* name, double lo, double hi) {
    const json* v = field(j, name);
    if (!v->is_number()) bad(name, std::string("'") + name + "' must be a number");
    const double d = v->get<double>();
    if (!std::isfinite(d) || d < lo || d > hi) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "'%s' must be between %g and %g, got %g", name, lo, hi, d);
        bad(name, buf);
    }
    return d;
}

int64_t integer(const json& j, const char* name, int64_t lo, int64_t hi) {
    const json* v = field(j, name);
    if (!v->is_number_integer()) bad(name, std::string("'") + name + "' must be an integer");
    // Unsigned values past int64 come back as huge numbers; read them as such.
    const int64_t i = v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX)
                          ? INT64_MAX
                          : v->get<int64_t>();
    if (i < lo || i > hi) {
        bad(name, std::string("'") + name + "' must be between " + std::to_string(lo) + " and " +
                      std::to_string(hi) + ", got " + std::to_string(i));
    }
    return i;
}

void parse_common(const json& j, ParsedRequest& r) {
    const json* model = field(j, "model");
    if (!model || !model->is_string()) bad("model", "'model' is required and must be a string");
    r.model = model->get<std::string>();

    if (const json* s = field(j, "stream")) {
        if (!s->is_boolean()) bad("stream", "'stream' must be true or false");
        r.stream = s->get<bool>();
    }
    if (const json* o = field(j, "stream_options")) {
        if (!o->is_object()) bad("stream_options", "'stream_options' must be an object");
        if (const json* u = field(*o, "include_usage")) {
            if (!u->is_boolean()) bad("stream_options", "'include_usage' must be true or false");
            r.include_usage = u->get<bool>();
        }
    }
    // Sampling: OpenAI's fields, plus top_k / min_p / repetition_penalty as vLLM and
    // llama-server accept them.
    SamplingParams& p = r.sampling;
    if (field(j, "temperature")) p.temperature = float(number(j, "temperature", 0.0, 2.0));
    if (field(j, "top_p")) p.top_p = float(number(j, "top_p", 1e-9, 1.0));
    if (field(j, "top_k")) p.top_k = int(integer(j, "top_k", 0, 1 << 30));
    if (field(j, "min_p")) p.min_p = float(number(j, "min_p", 0.0, 0.999999));
    if (field(j, "repetition_penalty"))
        p.repetition_penalty = float(number(j, "repetition_penalty", 1e-6, 100.0));
    if (field(j, "temperature") || field(j, "top_p") || field(j, "top_k") || field(j, "min_p"))
        p.greedy = false;
    // temperature 0 means greedy, as OpenAI documents it.
    if (p.temperature == 0.0f) p.greedy = true;
    if (field(j, "seed")) {
        // 0 asks the sampler for a random seed; a client's seed 0 is a fixed seed like any other.
        const int64_t s = integer(j, "seed", INT64_MIN, INT64_MAX);
        p.seed = s == 0 ? 0x9E3779B97F4A7C15ull : uint64_t(s);
    }
    for (const char* name : {"max_tokens", "max_completion_tokens"}) {
        if (field(j, name)) r.max_tokens = int(integer(j, name, 1, 1 << 24));
    }
    if (const json* n = field(j, "n"); n && (!n->is_number_integer() || n->get<int64_t>() != 1))
        bad("n", "only n = 1 is supported");
    for (const char* name : {"presence_penalty", "frequency_penalty"}) {
        if (field(j, name) && number(j, name, -2.0, 2.0) != 0.0)
            bad(name, std::string("'") + name + "' is not supported (use repetition_penalty)");
    }
    if (const json* lp = field(j, "logprobs"); lp && !(lp->is_boolean() && !lp->get<bool>()))
        bad("logprobs", "logprobs are not supported");
    if (const json* stop = field(j, "stop")) {
        if (stop->is_string()) {
            r.stop.push_back(stop->get<std::string>());
        } else if (stop->is_array()) {
            if (stop->size() > 4) bad("stop", "'stop' takes at most 4 strings");
            for (const auto& s : *stop) {
                if (!s.is_string()) bad("stop", "'stop' must be a string or a list of strings");
                r.stop.push_back(s.get<std::string>());
            }
        } else {
            bad("stop", "'stop' must be a string or a list of strings");
        }
        for (const auto& s : r.stop) {
            if (s.empty()) bad("stop", "stop strings must not be empty");
        }
    }
    try {
        p.validate();
    } catch (const std::exception& e) {
        bad("", e.what());
    }
}

// A message's content: a string, or OpenAI's list of parts of which only text is supported.
std::string message_text(const json& content, size_t index) {
    const std::string where = "messages[" + std::to_string(index) + "].content";
    if (content.is_null()) return {};
    if (content.is_string()) return content.get<std::string>();
    if (!content.is_array()) bad(where, "'" + where + "' must be a string or a list of parts");
    std::string text;
    for (const auto& part : content) {
        if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
            !part["text"].is_string())
            bad(where, "only text parts ({\"type\": \"text\", \"text\": ...}) are supported");
        text += part["text"].get<std::string>();
    }
    return text;
}

}  // namespace

ParsedRequest parse_chat_request(const std::string& body, const SamplingParams& defaults) {
    const json j = parse_body(body);
    ParsedRequest r;
    r.chat = true;
    r.sampling = defaults;
    parse_common(j, r);
    const json* messages = field(j, "messages");
    if (!messages || !messages->is_array() || messages->empty())
        bad("messages", "'messages' is required and must be a non-empty list");
    r.messages = nlohmann::ordered_json::array();
    for (size_t i = 0; i < messages->size(); ++i) {
        const json& m = (*messages)[i];
        const std::string where = "messages[" + std::to_string(i) + "]";
        if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
            bad(where, "'" + where + "' must be an object with a string 'role'");
        const std::string role = m["role"].get<std::string>();
        if (role != "system" && role != "user" && role != "assistant" && role != "developer" &&
            role != "tool")
            bad(where + ".role", "unknown role '" + role + "'");
        const auto content = m.find("content");
        r.messages.push_back(
            {{"role", role == "developer" ? "system" : role},
             {"content", message_text(content == m.end() ? json() : *content, i)}});
    }
    return r;
}

ParsedRequest parse_completion_request(const std::string& body, const SamplingParams& defaults) {
    const json j = parse_body(body);
    ParsedRequest r;
    r.chat = false;
    r.sampling = defaults;
    parse_common(j, r);
    const json* prompt = field(j, "prompt");
    if (prompt && prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string())
        prompt = &(*prompt)[0];
    if (!prompt || !prompt->is_string())
        bad("prompt", "'prompt' is required and must be a string (or a list of one string)");
    r.prompt = prompt->get<std::string>();
    if (const json* echo = field(j, "echo"); echo && echo->is_boolean() && echo->get<bool>())
        bad("echo", "'echo' is not supported");
    if (field(j, "suffix")) bad("suffix", "'suffix' is not supported");
    return r;
}

std::string new_response_id(bool chat) {
    static std::atomic<uint64_t> counter{0};
    static const uint64_t salt = std::random_device{}();
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s-%016llx%04llx", chat ? "chatcmpl" : "cmpl",
                  (unsigned long long)salt, (unsigned long long)(++counter & 0xffff));
    return buf;
}

int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

nlohmann::json usage_json(const Usage& u) {
    return {{"prompt_tokens", u.prompt_tokens},
            {"completion_tokens", u.completion_tokens},
            {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

nlohmann::json completion_json(const ResponseContext& c, bool chat, const std::string& text,
                               FinishReason finish, const Usage& usage) {
    json choice = {
        {"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_reason_name(finish)}};
    if (chat)
        choice["message"] = {{"role", "assistant"}, {"content", text}};
    else
        choice["text"] = text;
    return {{"id", c.id},
            {"object", chat ? "chat.completion" : "text_completion"},
            {"created", c.created},
            {"model", c.model},
            {"choices", json::array({choice})},
            {"usage", usage_json(usage)}};
}

nlohmann::json chunk_json(const ResponseContext& c, bool chat, const std::string& text, bool role,
                          std::optional<FinishReason> finish) {
    json choice = {{"index", 0}, {"logprobs", nullptr}};
    choice["finish_reason"] = finish ? json(finish_reason_name(*finish)) : json(nullptr);
    if (chat) {
        json delta = json::object();
        if (role) delta["role"] = "assistant";
        if (!text.empty() || role) delta["content"] = text;
        choice["delta"] = delta;
    } else {
        choice["text"] = text;
    }
    return {{"id", c.id},
            {"object", chat ? "chat.completion.chunk" : "text_completion"},
            {"created", c.created},
            {"model", c.model},
            {"choices", json::array({choice})}};
}

nlohmann::json usage_chunk_json(const ResponseContext& c, bool chat, const Usage& usage) {
    return {{"id", c.id},
            {"object", chat ? "chat.completion.chunk" : "text_completion"},
            {"created", c.created},
            {"model", c.model},
            {"choices", json::array()},
            {"usage", usage_json(usage)}};
}

nlohmann::json models_json(const std::string& model, int64_t created) {
    return {{"object", "list"},
            {"data", json::array({{{"id", model},
                                   {"object", "model"},
                                   {"created", created},
                                   {"owned_by", "moestudio"}}})}};
}

std::string dump_json(const nlohmann::json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string sse_event(const nlohmann::json& j) {
    return "data: " + dump_json(j) + "\n\n";
}

}  // namespace moe::server
