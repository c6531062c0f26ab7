// WebSocket handshake checks (RFC 6455 §4): what the gateway verifies before it opens a tunnel.
// Thread: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace gh::http {

// Whether an Upgrade field value asks for WebSocket and nothing else: exactly one token,
// "websocket" (case-insensitive), optionally surrounded by whitespace.
bool is_websocket_upgrade(std::string_view upgrade_value) noexcept;

// Whether a Sec-WebSocket-Key is well formed: base64 of 16 bytes (24 characters, "==" at the end).
bool valid_websocket_key(std::string_view key) noexcept;

// The Sec-WebSocket-Accept a service must answer for KEY: base64(SHA-1(KEY + the RFC's GUID)).
std::string websocket_accept(std::string_view key);

}  // namespace gh::http
