#include "http/head_writer.h"

#include <charconv>

#include "core/strings.h"

namespace gh::http {

namespace {

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

void append_number(std::string& out, std::uint64_t n) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, static_cast<std::size_t>(r.ptr - buf));
}

}  // namespace

ConnectionScope::ConnectionScope(const Fields& fields) noexcept : fields_(fields) {
  for (const auto& f : fields)
    if (iequals(f.name, "connection")) {
      if (n_ < connection_.size()) connection_[n_++] = f.value;
      else many_ = true;
    }
}

bool ConnectionScope::scoped(std::string_view name) const noexcept {
  if (is_hop_by_hop(name)) return true;
  if (many_) {
    for (const auto& f : fields_)
      if (iequals(f.name, "connection") && has_token(f.value, name)) return true;
    return false;
  }
  for (std::size_t i = 0; i < n_; ++i)
    if (has_token(connection_[i], name)) return true;
  return false;
}

void write_request_head(std::string& out, const OutgoingRequest& req) {
  out.append(req.method);
  out.push_back(' ');
  out.append(req.path);
  if (req.has_query) {
    out.push_back('?');
    out.append(req.query);
  }
  out.append(" HTTP/1.1\r\nHost: ");
  out.append(req.host);
  out.append("\r\n");
  if (req.fields)
    for (const auto& f : *req.fields) append_field(out, f.name, f.value);
  if (req.body == BodyKind::Length) {
    out.append("Content-Length: ");
    append_number(out, req.content_length);
    out.append("\r\n");
  } else if (req.body == BodyKind::Chunked) {
    out.append("Transfer-Encoding: chunked\r\n");
  }
  out.append("\r\n");
}

void write_response_head(std::string& out, int status, std::string_view reason, const Fields& fields,
                         const ResponseFraming& framing) {
  out.append("HTTP/1.1 ");
  append_number(out, static_cast<std::uint64_t>(status));
  out.push_back(' ');
  out.append(reason);
  out.append("\r\n");
  for (const auto& f : fields) append_field(out, f.name, f.value);
  if (framing.body == BodyKind::Length) {
    out.append("Content-Length: ");
    append_number(out, framing.content_length);
    out.append("\r\n");
  } else if (framing.body == BodyKind::Chunked) {
    out.append("Transfer-Encoding: chunked\r\n");
  }
  if (framing.close) out.append("Connection: close\r\n");
  else if (framing.keep_alive_10) out.append("Connection: keep-alive\r\n");
  out.append("\r\n");
}

std::size_t format_chunk_header(char* buf, std::uint64_t size) noexcept {
  auto r = std::to_chars(buf, buf + 18, size, 16);
  buf[r.ptr - buf] = '\r';
  buf[r.ptr - buf + 1] = '\n';
  return static_cast<std::size_t>(r.ptr - buf) + 2;
}

}  // namespace gh::http
