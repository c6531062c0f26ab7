#include "proxy/snapshot.h"

namespace gh::proxy {

const upstream::Service* Snapshot::find_service(std::string_view name) const {
  for (const auto& s : services)
    if (s->name() == name) return s.get();
  return nullptr;
}

}  // namespace gh::proxy
