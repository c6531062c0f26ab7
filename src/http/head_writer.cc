#include "http/head_writer.h"

#include <charconv>
#include <cstring>

#include "core/strings.h"

namespace gh::http {

namespace {

constexpr std::size_t kMaxDigits = 20;  // of a std::uint64_t

// Writes into a string grown once for the whole head: its size is bounded first, so each
// part is a plain copy rather than an append that checks the capacity (a head has dozens).
class HeadOut {
 public:
  HeadOut(std::string& out, std::size_t most) : out_(out), at_(out.size()) {
    out.resize(at_ + most);
    p_ = out.data() + at_;
  }
  HeadOut(const HeadOut&) = delete;
  HeadOut& operator=(const HeadOut&) = delete;
  ~HeadOut() { out_.resize(static_cast<std::size_t>(p_ - out_.data())); }

  // Most names and many values are short: those are copied by two loads and two stores that
  // may overlap, without a call; longer ones by memcpy. Nothing is read outside `s`.
  void put(std::string_view s) noexcept {
    const char* from = s.data();
    const std::size_t n = s.size();
    if (n >= 8 && n <= 16) {
      copy_pair<std::uint64_t>(from, n);
    } else if (n >= 4 && n < 8) {
      copy_pair<std::uint32_t>(from, n);
    } else if (n > 16) {
      std::memcpy(p_, from, n);
    } else if (n > 0) {
      p_[0] = from[0];
      p_[n / 2] = from[n / 2];
      p_[n - 1] = from[n - 1];
    }
    p_ += n;
  }
  void crlf() noexcept {
    std::memcpy(p_, "\r\n", 2);
    p_ += 2;
  }
  void field(const Field& f) noexcept {
    put(f.name);
    std::memcpy(p_, ": ", 2);
    p_ += 2;
    put(f.value);
    crlf();
  }
  void number(std::uint64_t n) noexcept { p_ = std::to_chars(p_, p_ + kMaxDigits, n).ptr; }

 private:
  // The first and the last sizeof(Word) bytes of from[0, n): together, all n of them.
  template <class Word>
  void copy_pair(const char* from, std::size_t n) noexcept {
    Word head, tail;
    std::memcpy(&head, from, sizeof head);
    std::memcpy(&tail, from + n - sizeof tail, sizeof tail);
    std::memcpy(p_, &head, sizeof head);
    std::memcpy(p_ + n - sizeof tail, &tail, sizeof tail);
  }

  std::string& out_;
  std::size_t at_;
  char* p_ = nullptr;
};

// Bytes the fields take as "name: value\r\n" lines.
template <class Range>
std::size_t fields_size(const Range& fields) noexcept {
  std::size_t n = 0;
  for (const Field& f : fields) n += f.name.size() + f.value.size() + 4;
  return n;
}

}  // namespace

ConnectionScope::ConnectionScope(const Fields& fields) noexcept : fields_(fields) {
  for (const auto& f : fields) {
    if (!iequals(f.name, "connection")) continue;
    std::string_view list = f.value;
    while (!list.empty()) {
      const std::size_t comma = list.find(',');
      const std::string_view name = trim_ows(list.substr(0, comma));
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
      if (name.empty() || is_hop_by_hop(name)) continue;
      if (n_ < names_.size()) names_[n_++] = name;
      else many_ = true;
    }
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
    if (iequals(names_[i], name)) return true;
  return false;
}

void write_request_head(std::string& out, const OutgoingRequest& req) {
  constexpr std::string_view kVersion = " HTTP/1.1\r\nHost: ";
  constexpr std::string_view kLength = "Content-Length: ";
  constexpr std::string_view kChunked = "Transfer-Encoding: chunked\r\n";
  std::size_t most = req.method.size() + 1 + req.path.size() + 1 + req.query.size() + kVersion.size() +
                     req.host.size() + 2 + kLength.size() + kMaxDigits + kChunked.size() + 2;
  if (req.fields) most += fields_size(*req.fields);
  HeadOut o(out, most);
  o.put(req.method);
  o.put(" ");
  o.put(req.path);
  if (req.has_query) {
    o.put("?");
    o.put(req.query);
  }
  o.put(kVersion);
  o.put(req.host);
  o.crlf();
  if (req.fields)
    for (const Field& f : *req.fields) o.field(f);
  if (req.body == BodyKind::Length) {
    o.put(kLength);
    o.number(req.content_length);
    o.crlf();
  } else if (req.body == BodyKind::Chunked) {
    o.put(kChunked);
  }
  o.crlf();
}

void write_response_head(std::string& out, int status, std::string_view reason, const Fields& fields,
                         const ResponseFraming& framing) {
  constexpr std::string_view kVersion = "HTTP/1.1 ";
  constexpr std::string_view kLength = "Content-Length: ";
  constexpr std::string_view kChunked = "Transfer-Encoding: chunked\r\n";
  constexpr std::string_view kClose = "Connection: close\r\n";
  constexpr std::string_view kKeepAlive = "Connection: keep-alive\r\n";
  const std::size_t most = kVersion.size() + kMaxDigits + 1 + reason.size() + 2 + fields_size(fields) +
                           kLength.size() + kMaxDigits + kChunked.size() + kKeepAlive.size() + 4;
  HeadOut o(out, most);
  o.put(kVersion);
  o.number(static_cast<std::uint64_t>(status));
  o.put(" ");
  o.put(reason);
  o.crlf();
  for (const Field& f : fields) o.field(f);
  if (framing.body == BodyKind::Length) {
    o.put(kLength);
    o.number(framing.content_length);
    o.crlf();
  } else if (framing.body == BodyKind::Chunked) {
    o.put(kChunked);
  }
  if (framing.close) o.put(kClose);
  else if (framing.keep_alive_10) o.put(kKeepAlive);
  o.crlf();
}

std::size_t format_chunk_header(char* buf, std::uint64_t size) noexcept {
  auto r = std::to_chars(buf, buf + 18, size, 16);
  buf[r.ptr - buf] = '\r';
  buf[r.ptr - buf + 1] = '\n';
  return static_cast<std::size_t>(r.ptr - buf) + 2;
}

}  // namespace gh::http
