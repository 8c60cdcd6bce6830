/* Responses written by the router itself (see answer.h). */
#include <stdio.h>

#include "answer.h"
#include "route.h"

struct answer_text {
    int status;
    const char *reason;
    const char *code;  /* X-Sbx-Error, stable for programs */
    const char *title; /* first line of the body, for people */
    const char *hint;
};

static const struct answer_text texts[] = {
    [ANSWER_BAD_REQUEST] = {400, "Bad Request", "bad-request", "Bad request",
        "The request could not be parsed as HTTP/1.1."},
    [ANSWER_HEAD_TOO_LARGE] = {431, "Request Header Fields Too Large", "head-too-large",
        "Request headers too large", "The request line and headers must fit in 16 KiB."},
    [ANSWER_TIMEOUT] = {408, "Request Timeout", "timeout", "Request timeout",
        "The request headers did not arrive in time."},
    [ANSWER_NOT_SERVICE_HOST] = {404, "Not Found", "unknown-host", "Unknown service host",
        "Service URLs look like <sandbox>--<port>.<domain>."},
    [ANSWER_UNKNOWN_SANDBOX] = {404, "Not Found", "unknown-sandbox", "Unknown sandbox",
        "No sandbox by this name exists (it may have been deleted)."},
    [ANSWER_AUTH_REQUIRED] = {401, "Unauthorized", "auth-required", "Authentication required",
        "No service token in a header or cookie. Open the service's browser URL, or send the "
        "token in the X-Sbx-Service-Token header (or Authorization: Bearer)."},
    [ANSWER_INVALID_TOKEN] = {401, "Unauthorized", "invalid-token", "Invalid service token",
        "The service token is not genuine. Get a fresh service URL."},
    [ANSWER_LINK_EXPIRED] = {401, "Unauthorized", "link-expired", "Service link has expired",
        "The token's lifetime is over. Get a fresh service URL for this sandbox port."},
    [ANSWER_WRONG_SERVICE] = {403, "Forbidden", "wrong-service",
        "Token is for another service", "This token is valid for a different sandbox or port."},
    [ANSWER_BAD_REDIRECT] = {400, "Bad Request", "bad-redirect", "Redirect target refused",
        "`next` must be a path on this host, such as /app/."},
    [ANSWER_METHOD] = {405, "Method Not Allowed", "method", "Method not allowed",
        "CONNECT is not supported by service URLs."},
    [ANSWER_UNREACHABLE] = {502, "Bad Gateway", "unreachable", "Service is not reachable",
        "Nothing is listening on that port in the sandbox. Verify the server is running."},
    [ANSWER_BAD_GATEWAY] = {502, "Bad Gateway", "bad-gateway", "Bad response from service",
        "The service in the sandbox closed the connection or sent a malformed response."},
    [ANSWER_BUSY] = {503, "Service Unavailable", "busy", "Router busy",
        "Too many connections; try again."},
    [ANSWER_INTERNAL] = {500, "Internal Server Error", "internal", "Internal error",
        "The router failed to handle the request."},
};

int answer_status(enum answer_kind kind)
{
    return texts[kind].status;
}

int answer_error(char *out, size_t cap, enum answer_kind kind, bool keep_alive, bool head_only)
{
    const struct answer_text *t = &texts[kind];
    char body[512];
    int body_len = snprintf(body, sizeof(body), "%s\n\n%s\n", t->title, t->hint);
    if (body_len < 0 || (size_t)body_len >= sizeof(body))
        return -1;
    int n = snprintf(out, cap,
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: %d\r\n"
                     "Cache-Control: no-store\r\n"
                     "X-Sbx-Error: %s\r\n"
                     "%s"
                     "\r\n%s",
                     t->status, t->reason, body_len, t->code,
                     keep_alive ? "" : "Connection: close\r\n", head_only ? "" : body);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

int answer_bootstrap(char *out, size_t cap, const char *location, const char *token,
                     int64_t max_age, bool secure, bool keep_alive)
{
    int n = snprintf(out, cap,
                     "HTTP/1.1 302 Found\r\n"
                     "Location: %s\r\n"
                     "Set-Cookie: " ROUTE_COOKIE "=%s; Path=/; Max-Age=%lld; HttpOnly; "
                     "SameSite=Lax%s\r\n"
                     "Cache-Control: no-store\r\n"
                     "Referrer-Policy: no-referrer\r\n"
                     "Content-Length: 0\r\n"
                     "%s\r\n",
                     location, token, (long long)max_age, secure ? "; Secure" : "",
                     keep_alive ? "" : "Connection: close\r\n");
    return n < 0 || (size_t)n >= cap ? -1 : n;
}
