#include "harness/assertions.h"

namespace gh::integ {

::testing::AssertionResult IsJsonError(const Response& r, int status, std::string_view message) {
  if (r.status != status) {
    return ::testing::AssertionFailure() << "expected status " << status << ", got:\n" << r.describe();
  }
  const std::string type = r.headers.value_or("Content-Type", "");
  if (type.rfind("application/json", 0) != 0) {
    return ::testing::AssertionFailure() << "Content-Type is not application/json:\n" << r.describe();
  }
  auto json = Json::parse(r.body);
  if (!json || json->type != Json::Type::Object) {
    return ::testing::AssertionFailure() << "body is not a JSON object:\n" << r.describe();
  }
  const Json* error = json->get("error");
  if (error == nullptr || !error->is_string(message)) {
    return ::testing::AssertionFailure() << "expected \"error\": \"" << message << "\":\n" << r.describe();
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult ReachedNothing(const Upstream& up) {
  if (up.heads_seen() != 0 || up.request_count() != 0) {
    auto reqs = up.requests();
    auto f = ::testing::AssertionFailure();
    f << "upstream " << up.name() << " saw " << up.heads_seen() << " head(s), " << reqs.size()
      << " complete request(s)";
    if (!reqs.empty()) f << "; first: " << reqs[0].method << " " << reqs[0].target << "\n" << reqs[0].headers.to_string();
    return f;
  }
  return ::testing::AssertionSuccess();
}

}  // namespace gh::integ
