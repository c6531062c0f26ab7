// Integration harness, assertions shared by the test files.
#pragma once

#include <gtest/gtest.h>

#include <string_view>

#include "harness/gateway.h"
#include "harness/http.h"
#include "harness/json.h"
#include "harness/upstream.h"

namespace gh::integ {

// R is a gateway-made error: STATUS, Content-Type application/json, and a JSON body whose
// "error" member is MESSAGE.
::testing::AssertionResult IsJsonError(const Response& r, int status, std::string_view message);

// Nothing of a request reached UP: no head, no complete request.
::testing::AssertionResult ReachedNothing(const Upstream& up);

}  // namespace gh::integ

// Starts GW or fails the test with its stderr.
#define GH_START(gw) ASSERT_TRUE((gw).start()) << (gw).error()
