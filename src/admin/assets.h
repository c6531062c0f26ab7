#pragma once
// The dashboard's files (src/admin/assets/), built into the binary: the admin listener serves
// them without a token and without touching the disk. They hold no data: the page asks for the
// admin token and reads GET /events with it.
#include <span>
#include <string_view>

namespace gh::admin {

struct Asset {
  std::string_view path;          // the request path it answers: "/", "/dashboard.js", ...
  std::string_view content_type;  // the Content-Type header to send
  std::string_view body;
};

// Every embedded file (generated at build time by cmake/embed_assets.cmake).
std::span<const Asset> assets();

// The asset a GET of `path` answers ("/" is index.html), or nullptr. `path` is the request
// target's path, without its query.
const Asset* find_asset(std::string_view path);

}  // namespace gh::admin
