// Head writer: HTTP/1.1 head serialisation and hop-by-hop stripping, written once for both
// directions (the proxy's request to an instance, the response to a client, local replies).
// Thread: pure functions and a small stack object; no shared state.
// Hot path: heads are appended to a caller-owned string reused across requests, so a warm
// connection allocates nothing for them.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http/fields.h"
#include "http/parser.h"

namespace gh::http {

// Whether a field belongs to one connection only: the fixed hop-by-hop names (RFC 9110 §7.6.1)
// and every name the message's Connection field(s) list. Built once per head: the listed names
// are split out then, those already hop-by-hop (keep-alive, the usual one) left out.
class ConnectionScope {
 public:
  explicit ConnectionScope(const Fields& fields) noexcept;
  bool scoped(std::string_view name) const noexcept;

 private:
  const Fields& fields_;
  std::array<std::string_view, 8> names_{};  // the names the Connection fields list
  std::size_t n_ = 0;
  bool many_ = false;  // more names than fit: each field's Connection values searched instead
};

// A request as it goes to an instance. Views must live until the head is written.
struct OutgoingRequest {
  std::string_view method;
  std::string_view path;         // origin-form path, already rewritten (strip_prefix)
  std::string_view query;        // without '?'
  bool has_query = false;        // "?" was sent, even with an empty query (RFC 3986 §6.2.3)
  std::string_view host;         // the Host field
  const std::vector<Field>* fields = nullptr;  // end-to-end fields then the gateway's own, in order
  BodyKind body = BodyKind::None;              // Length: Content-Length; Chunked: chunked coding
  std::uint64_t content_length = 0;
};

// Appends the HTTP/1.1 request head, final CRLF included.
void write_request_head(std::string& out, const OutgoingRequest& req);

// How a response head ends, on an HTTP/1.x connection to a client.
struct ResponseFraming {
  BodyKind body = BodyKind::None;  // Length: Content-Length; Chunked: chunked coding; None/UntilClose: neither
  std::uint64_t content_length = 0;
  bool close = false;              // Connection: close
  bool keep_alive_10 = false;      // HTTP/1.0 client kept alive: Connection: keep-alive
};

// Appends "HTTP/1.1 <status> <reason>", the head's fields, the framing fields and the final CRLF.
void write_response_head(std::string& out, int status, std::string_view reason, const Fields& fields,
                         const ResponseFraming& framing);

// Writes "<hex size>\r\n" into buf (at least 20 bytes); returns its length.
std::size_t format_chunk_header(char* buf, std::uint64_t size) noexcept;

}  // namespace gh::http
