#include "http/websocket.h"

#include <gtest/gtest.h>

namespace gh::http {
namespace {

TEST(WebSocket, AcceptIsTheRfcExample) {
  // RFC 6455 §1.3.
  EXPECT_EQ(websocket_accept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_EQ(websocket_accept(" dGhlIHNhbXBsZSBub25jZQ== "), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WebSocket, KeyShape) {
  EXPECT_TRUE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ=="));
  EXPECT_FALSE(valid_websocket_key(""));
  EXPECT_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ="));    // 23 characters
  EXPECT_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ!="));   // not base64
  EXPECT_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZR=="));   // non-zero padding bits
  EXPECT_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25j$Q=="));
}

TEST(WebSocket, UpgradeToken) {
  EXPECT_TRUE(is_websocket_upgrade("websocket"));
  EXPECT_TRUE(is_websocket_upgrade("WebSocket"));
  EXPECT_TRUE(is_websocket_upgrade(" websocket "));
  EXPECT_FALSE(is_websocket_upgrade("h2c"));
  EXPECT_FALSE(is_websocket_upgrade("websocket, h2c"));
  EXPECT_FALSE(is_websocket_upgrade("h2c, websocket"));
  EXPECT_FALSE(is_websocket_upgrade("websocket/13"));
  EXPECT_FALSE(is_websocket_upgrade(""));
}

}  // namespace
}  // namespace gh::http
