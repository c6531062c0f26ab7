// Strict HTTP/1.1 message-head parser (RFC 9112) and chunked-body decoder.
// Parses in place: every string_view points into the caller's buffer, nothing is copied or
// allocated beyond the Fields vector (reused across requests on a connection).
// Thread: pure functions plus a small per-stream decoder object; no shared state.
// Strictness: anything that could be read two ways is Invalid, never "repaired" (SPEC §3).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/fields.h"

namespace gh::http {

enum class BodyKind : std::uint8_t {
  None,        // no body
  Length,      // exactly content_length bytes
  Chunked,     // chunked transfer coding (final coding)
  UntilClose,  // responses only: body ends when the connection closes
};

struct ParseLimits {
  std::size_t max_uri_bytes = 8 * 1024;        // request-target length; longer: 414
  std::size_t max_header_bytes = 16 * 1024;    // request/status line + all fields; more: 431
  std::size_t max_headers = 100;               // field count; more: 431
};

struct RequestHead {
  std::string_view method;
  std::string_view target;      // as sent (origin-form, absolute-form, or "*")
  std::string_view path;        // origin-form path, or the path of an absolute-form target ("/" if none)
  std::string_view query;       // after '?', without it; empty when none
  int version_minor = 1;        // HTTP/1.<minor>; only 0 and 1 are accepted
  Fields fields;
  std::string_view host;        // the Host field value (absolute-form: its authority)
  BodyKind body = BodyKind::None;
  std::uint64_t content_length = 0;
  bool keep_alive = true;       // HTTP/1.1 default true; HTTP/1.0 only with Connection: keep-alive
  bool expect_continue = false; // Expect: 100-continue
  bool upgrade = false;         // Connection names "upgrade" and an Upgrade field is present
  std::size_t head_size = 0;    // bytes of the head, final CRLF CRLF included

  void reset() noexcept;
};

struct ResponseHead {
  int status = 0;
  std::string_view reason;
  int version_minor = 1;
  Fields fields;
  BodyKind body = BodyKind::None;
  std::uint64_t content_length = 0;
  bool keep_alive = true;       // false on Connection: close, HTTP/1.0 without keep-alive, or UntilClose
  std::size_t head_size = 0;

  void reset() noexcept;
};

enum class ParseState : std::uint8_t { Complete, Partial, Invalid };

struct ParseOutcome {
  ParseState state = ParseState::Partial;
  int status = 0;            // when Invalid: the status to answer (400, 414, 431, 501)
  const char* detail = "";   // when Invalid: a short reason for logs, e.g. "obs-fold"
};

// Parses a request head from the start of `buf`.
// Partial: the head is not complete yet and no limit is exceeded (read more).
// Invalid: reject with outcome.status and close the connection.
// Complete: `out` is filled; out.head_size bytes of `buf` form the head.
// Statuses: 414 and 431 as soon as the limit is passed, even before the head is complete;
// 400 for any syntax or framing ambiguity; 501 for a transfer coding other than a final chunked
// (a final coding that is not chunked is 400: the body length cannot be known).
// Up to two empty lines before the request line are skipped and counted in head_size.
ParseOutcome parse_request(std::string_view buf, const ParseLimits& limits, RequestHead& out);

// Parses a response head. `request_method_head` and a 1xx/204/304 status mean no body.
// Invalid covers anything ambiguous or not HTTP at all (the caller answers 502).
ParseOutcome parse_response(std::string_view buf, const ParseLimits& limits, bool request_method_head,
                            ResponseHead& out);

// Incremental decoder for a chunked body. Feed it bytes as they arrive; it returns at most one
// span of payload per call, as a view into the input.
// Bounds: chunk size at most 16 hex digits, size line with extensions 4 KiB, trailer section
// 16 KiB. Line ends are CRLF only. Extensions are checked for byte classes and discarded.
class ChunkedDecoder {
 public:
  struct Step {
    std::size_t consumed = 0;   // bytes of the input used by this step
    std::string_view data;      // payload bytes (a view into the input), may be empty
    bool done = false;          // the last chunk and trailer section have been read
    bool error = false;         // malformed: abort the message
    const char* detail = "";
  };
  // Call repeatedly on the unconsumed rest of the input until consumed == input size,
  // done or error. Trailer fields are validated and discarded.
  Step feed(std::string_view in) noexcept;
  bool done() const noexcept { return state_ == State::Done; }
  std::uint64_t payload_bytes() const noexcept { return total_; }

 private:
  enum class State : std::uint8_t { Size, Ext, SizeLf, Data, DataCr, DataLf, Trailer, TrailerLf, Done, Error };
  State state_ = State::Size;
  std::uint64_t remaining_ = 0;   // bytes left in the current chunk
  std::uint64_t total_ = 0;
  int size_digits_ = 0;
  std::size_t line_bytes_ = 0;    // bytes in the current size/extension/trailer line (bounded)
  std::size_t trailer_bytes_ = 0; // bytes in the whole trailer section (bounded)
  bool trailer_line_empty_ = true;
  bool ext_semicolon_ = false;    // a ';' has been seen on the current size line
  bool trailer_in_value_ = false; // past the ':' of the current trailer field
};

// Appends "<hex size>\r\n" to out.
void append_chunk_header(std::string& out, std::uint64_t size);

// Fixed hop-by-hop field names (Connection, Keep-Alive, Proxy-Connection, TE, Trailer,
// Transfer-Encoding, Upgrade), case-insensitive.
bool is_hop_by_hop(std::string_view name) noexcept;

// Whether a field value that came apart from any HTTP/1.1 framing (an HTTP/2 field) may be
// written in an HTTP/1.1 head as it is: no control byte but tab, no DEL, no space or tab at
// either end.
bool is_clean_field_value(std::string_view value) noexcept;

// Whether the comma-separated list `value` contains `token` (case-insensitive).
bool has_token(std::string_view value, std::string_view token) noexcept;

}  // namespace gh::http
