#include "server/api_error.h"

#include <nlohmann/json.hpp>

namespace moe::server {

std::string ApiError::to_json() const {
    const auto or_null = [](const std::string& s) {
        return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
    };
    nlohmann::ordered_json e = nlohmann::ordered_json::object();
    e["message"] = message;
    e["type"] = type;
    e["param"] = or_null(param);
    e["code"] = or_null(code);
    // dump() would throw on invalid UTF-8 (e.g. a bad model name echoed back); replace instead.
    return nlohmann::ordered_json{{"error", e}}.dump(-1, ' ', false,
                                                     nlohmann::json::error_handler_t::replace);
}

ApiError ApiError::bad_request(std::string message, std::string param, std::string code) {
    return {400, std::move(message), "invalid_request_error", std::move(param), std::move(code)};
}

ApiError ApiError::unauthorized(std::string message) {
    return {401, std::move(message), "invalid_request_error", "", "invalid_api_key"};
}

ApiError ApiError::model_not_found(const std::string& requested, const std::string& served) {
    return {404,
            "The model '" + requested + "' does not exist; this server serves '" + served +
                "' (GET /v1/models lists it)",
            "invalid_request_error", "model", "model_not_found"};
}

ApiError ApiError::not_found(std::string message) {
    return {404, std::move(message), "invalid_request_error", "", "not_found"};
}

ApiError ApiError::too_large(std::string message) {
    return {413, std::move(message), "invalid_request_error", "", "request_too_large"};
}

ApiError ApiError::queue_full(std::string message) {
    return {429, std::move(message), "rate_limit_exceeded", "", "queue_full"};
}

ApiError ApiError::unavailable(std::string message) {
    return {503, std::move(message), "server_error", "", "unavailable"};
}

ApiError ApiError::internal(std::string message) {
    return {500, std::move(message), "server_error", "", ""};
}

ApiError error_for_status(int status) {
    switch (status) {
        case 400:
            return ApiError::bad_request("The request could not be parsed");
        case 401:
            return ApiError::unauthorized("Missing or wrong API key");
        case 404:
            return ApiError::not_found(
                "Unknown endpoint; this server has GET /v1/models, POST "
                "/v1/chat/completions, POST /v1/completions, GET /health "
                "and GET /metrics");
        case 405:
            return {405, "Method not allowed on this endpoint", "invalid_request_error", "", ""};
        case 408:
            return {408, "The request was not received in time", "invalid_request_error", "",
                    "timeout"};
        case 413:
            return ApiError::too_large(
                "The request body is larger than this server accepts (see --max-body-kib)");
        case 414:
            return {414, "The request URI is too long", "invalid_request_error", "", ""};
        case 429:
            return ApiError::queue_full("Too many requests are waiting; retry later");
        case 503:
            return ApiError::unavailable("The server is shutting down");
        default:
            return {status, "HTTP error " + std::to_string(status),
                    status < 500 ? "invalid_request_error" : "server_error", "", ""};
    }
}

}  // namespace moe::server
