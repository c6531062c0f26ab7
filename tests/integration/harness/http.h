// Integration harness, HTTP/1.1 message model: the plain structs that the raw client, the
// loopback upstream and the tests share, and the incremental parsers that fill them.
// Thread: plain data; the parsers are pure functions of a byte buffer.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gh::integ {

bool iequals(std::string_view a, std::string_view b);

struct Header {
  std::string name;
  std::string value;
};

// Header fields in arrival order; lookups are case-insensitive.
class Headers {
 public:
  Headers() = default;
  Headers(std::initializer_list<Header> list) : list_(list) {}
  void add(std::string name, std::string value) { list_.push_back({std::move(name), std::move(value)}); }
  // The first value of NAME, or nullopt.
  std::optional<std::string> get(std::string_view name) const;
  std::string value_or(std::string_view name, std::string fallback) const;
  bool has(std::string_view name) const { return get(name).has_value(); }
  std::size_t count(std::string_view name) const;
  std::vector<std::string> all(std::string_view name) const;
  const std::vector<Header>& list() const { return list_; }
  std::string to_string() const;  // "Name: value\n" lines, for failure messages

 private:
  std::vector<Header> list_;
};

struct Request {
  std::string method;
  std::string target;
  std::string version;
  Headers headers;
  std::string body;        // decoded when chunked
  bool chunked = false;    // arrived with Transfer-Encoding: chunked
};

struct Response {
  int status = 0;
  std::string reason;
  std::string version;
  Headers headers;
  std::string body;        // decoded when chunked
  bool chunked = false;
  std::string raw_head;    // status line and fields as received
  std::string describe() const;  // status, headers and the first bytes of the body
};

enum class Parse { NeedMore, Done, Invalid };

// Parses one response from the front of BUF. EOF says the peer closed (a body delimited by
// close ends there). HEAD_REQUEST: the response has no body. On Done, CONSUMED is the number of
// bytes the message took.
Parse parse_response(std::string_view buf, bool eof, bool head_request, Response& out,
                     std::size_t& consumed);

// Parses one request head from the front of BUF (fields only, no body). On Done, HEAD_LEN is the
// length of the head including the blank line.
Parse parse_request_head(std::string_view buf, Request& out, std::size_t& head_len);

// Decodes a chunked body starting at BUF. On Done, CONSUMED covers the last chunk and trailers.
Parse decode_chunked(std::string_view buf, std::string& body, std::size_t& consumed);

// Incremental form: call feed() with the growing buffer (the body's bytes from its first one);
// it resumes after the last whole chunk. On Done, pos is the end of the message.
struct ChunkedDecoder {
  std::size_t pos = 0;
  std::string body;
  Parse feed(std::string_view buf);
};

// Frames BODY as chunks of at most CHUNK bytes plus the last chunk.
std::string chunk_encode(std::string_view body, std::size_t chunk = 8192);

// A deterministic pseudo-random body of N bytes covering every byte value.
std::string pattern_body(std::size_t n, unsigned seed = 1);

// Replaces each {KEY} in TEXT by its value.
std::string fill(std::string text, const std::vector<std::pair<std::string, std::string>>& vars);

}  // namespace gh::integ
