#include "proxy/local_reply.h"

#include "proxy/access_log.h"

namespace gh::proxy {

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
  }
}

std::string_view error_message(int status) noexcept {
  switch (status) {
    case 400: return "Bad request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "No route";
    case 408: return "Request timeout";
    case 413: return "Payload too large";
    case 414: return "URI too long";
    case 429: return "Too many requests";
    case 431: return "Request header fields too large";
    case 501: return "Not implemented";
    case 502: return "Bad gateway";
    case 503: return "Service unavailable";
    case 504: return "Gateway timeout";
    default: return "Internal error";
  }
}

std::string error_body(std::string_view message, std::string_view service) {
  std::string out = "{\"error\":";
  append_json_string(out, message);
  if (!service.empty()) {
    out += ",\"service\":";
    append_json_string(out, service);
  }
  out += "}";
  return out;
}

}  // namespace gh::proxy
