// Error log: the gateway's own messages (startup, reloads, outages of a store or an identity
// provider), one line each on stderr, through spdlog. The access log is proxy/access_log.h.
//   text: 2026-01-02T03:04:05.678Z info listening on 127.0.0.1:3000 (2 workers)
//   json: {"time":"2026-01-02T03:04:05.678Z","level":"info","msg":"listening on ..."}
// Thread: the log calls are thread-safe; setup() runs on the main thread (at startup and reload).
#pragma once

#include <spdlog/spdlog.h>

#include <optional>
#include <string_view>
#include <utility>

namespace gh::log {

enum class Level { Debug, Info, Warn, Error };
enum class Format { Text, Json };

// "debug" | "info" | "warn" | "error"; nullopt otherwise.
std::optional<Level> parse_level(std::string_view s);
// "text" | "json"; nullopt otherwise.
std::optional<Format> parse_format(std::string_view s);
std::string_view name(Level level);
std::string_view name(Format format);

// Sets the log's LEVEL and FORMAT; may be called again to change them. Before the first call,
// messages at info and above go to stderr as text.
void setup(Level level, Format format);

// The logger behind the functions below: stderr, one line per message.
spdlog::logger& logger();

template <class... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  logger().debug(f, std::forward<Args>(args)...);
}
template <class... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  logger().info(f, std::forward<Args>(args)...);
}
template <class... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  logger().warn(f, std::forward<Args>(args)...);
}
template <class... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  logger().error(f, std::forward<Args>(args)...);
}

}  // namespace gh::log
