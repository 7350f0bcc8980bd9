#pragma once
// Errors as the OpenAI API reports them: an HTTP status and
// {"error": {"message", "type", "param", "code"}}, so that OpenAI client libraries raise their
// usual exception types (BadRequestError, NotFoundError, RateLimitError, ...).
#include <exception>
#include <string>

namespace moe::server {

struct ApiError {
    int status = 500;
    std::string message;
    std::string type = "server_error";  // invalid_request_error, authentication_error, ...
    std::string param;                  // the request field at fault; "" = null
    std::string code;                   // e.g. model_not_found; "" = null

    // The response body.
    std::string to_json() const;

    static ApiError bad_request(std::string message, std::string param = "", std::string code = "");
    static ApiError unauthorized(std::string message);
    static ApiError model_not_found(const std::string& requested, const std::string& served);
    static ApiError not_found(std::string message);
    static ApiError too_large(std::string message);
    static ApiError queue_full(std::string message);
    static ApiError unavailable(std::string message);
    static ApiError internal(std::string message);
};

// The status's generic error (for statuses the HTTP library sets itself, e.g. 413 or 404 for an
// unknown path).
ApiError error_for_status(int status);

}  // namespace moe::server

namespace moe::server {

// Carries an ApiError out of request parsing and validation to the HTTP layer.
class ApiException : public std::exception {
  public:
    explicit ApiException(ApiError e) : error_(std::move(e)) {}
    const char* what() const noexcept override { return error_.message.c_str(); }
    const ApiError& error() const { return error_; }

  private:
    ApiError error_;
};

}  // namespace moe::server
