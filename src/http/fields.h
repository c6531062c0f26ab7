// Fields: the header fields of a parsed message head, as views into the read buffer.
// Thread: owned by one connection; views are valid until the buffer is released.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string_view>
#include <vector>

namespace gh::http {

struct Field {
  std::string_view name;
  std::string_view value;
};

class Fields {
 public:
  void clear() noexcept { list_.clear(); }
  void add(std::string_view name, std::string_view value) { list_.push_back({name, value}); }
  // Adds each of `fields` in order, in one growth.
  void add_all(const std::vector<Field>& fields) { list_.insert(list_.end(), fields.begin(), fields.end()); }
  std::size_t size() const noexcept { return list_.size(); }
  bool empty() const noexcept { return list_.empty(); }
  const Field& operator[](std::size_t i) const noexcept { return list_[i]; }
  auto begin() const noexcept { return list_.begin(); }
  auto end() const noexcept { return list_.end(); }

  // First value of `name` (case-insensitive); empty view when absent.
  std::string_view get(std::string_view name) const noexcept;
  // Whether `name` is present (case-insensitive).
  bool has(std::string_view name) const noexcept;
  // Number of fields named `name`.
  std::size_t count(std::string_view name) const noexcept;

  // Editing, for heads the gateway rewrites (response heads run through policies).
  // The views must outlive the head: point into the read buffer, static storage or
  // storage owned by the request context.
  // Removes every field named `name`; returns how many were removed.
  std::size_t remove(std::string_view name) noexcept;
  // Replaces every field named `name` by one with `value` (added when absent).
  void set(std::string_view name, std::string_view value);
  // Removes the fields for which pred(const Field&) holds, keeping the others in order.
  template <class Pred>
  void remove_if(Pred pred) {
    list_.erase(std::remove_if(list_.begin(), list_.end(), pred), list_.end());
  }

 private:
  std::vector<Field> list_;
};

}  // namespace gh::http
