#include "proxy/local_reply.h"

#include "core/strings.h"

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

bool is_grpc(std::string_view ct) noexcept {
  constexpr std::string_view kGrpc = "application/grpc";
  if (ct.size() < kGrpc.size() || !iequals(ct.substr(0, kGrpc.size()), kGrpc)) return false;
  return ct.size() == kGrpc.size() || ct[kGrpc.size()] == '+' || ct[kGrpc.size()] == ';';
}

int grpc_status(int status) noexcept {
  switch (status) {
    case 404: return 12;
    case 401: return 16;
    case 403: return 7;
    case 413:
    case 429: return 8;
    case 502:
    case 503: return 14;
    case 408:
    case 504: return 4;
    case 400:
    case 414:
    case 431:
    case 500: return 13;
    default: return 2;
  }
}

std::string grpc_message(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (c >= 0x20 && c <= 0x7e && c != '%') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

long long grpc_timeout_ms(std::string_view v) noexcept {
  if (v.size() < 2 || v.size() > 9) return -1;
  long long n = 0;
  for (char c : v.substr(0, v.size() - 1)) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  switch (v.back()) {
    case 'H': return n * 3'600'000;
    case 'M': return n * 60'000;
    case 'S': return n * 1000;
    case 'm': return n;
    case 'u': return (n + 999) / 1000;
    case 'n': return (n + 999'999) / 1'000'000;
    default: return -1;
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
