#include "admin/assets.h"

namespace gh::admin {

const Asset* find_asset(std::string_view path) {
  for (const Asset& a : assets())
    if (a.path == path) return &a;
  return nullptr;
}

}  // namespace gh::admin
