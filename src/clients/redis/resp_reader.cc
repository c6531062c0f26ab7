#include "clients/redis/resp_reader.h"

#include <hiredis/hiredis.h>

#include <algorithm>

#include "core/check.h"

namespace gh::clients::redis {

namespace {

// The root goes in the ReplyReader's `building_` (the reader's privdata); each element is
// appended to its parent's `elements` as it arrives. hiredis creates elements in order, each
// once the one before is complete, so memory grows with the bytes received, never with what a
// header announces, and the objects the reader still points at (the ancestors of the element
// being read, each the last of its parent's) never move. Nothing to free: the next reply
// reuses the root. nullptr (the reader then fails the reply) if the order is ever not kept.
Reply* slot(const redisReadTask* task) {
  if (task->parent) {
    auto& elements = static_cast<Reply*>(task->parent->obj)->elements;
    if (task->idx < 0 || static_cast<std::size_t>(task->idx) != elements.size()) return nullptr;
    return &elements.emplace_back();
  }
  auto* root = static_cast<Reply*>(task->privdata);
  *root = Reply{};
  return root;
}

void* create_string(const redisReadTask* task, char* str, std::size_t len) {
  Reply* r = slot(task);
  if (!r) return nullptr;
  r->type = task->type == REDIS_REPLY_ERROR    ? Reply::Type::Error
            : task->type == REDIS_REPLY_STATUS ? Reply::Type::Status
                                               : Reply::Type::String;
  r->str.assign(str, len);
  return r;
}

// nullptr makes the reader fail the reply ("Out of memory").
void* create_array(const redisReadTask* task, int elements) {
  if (elements > ReplyReader::kMaxArrayElements) return nullptr;
  Reply* r = slot(task);
  if (!r) return nullptr;
  r->type = Reply::Type::Array;
  r->elements.reserve(static_cast<std::size_t>(std::clamp(elements, 0, 8)));
  return r;
}

void* create_integer(const redisReadTask* task, long long value) {
  Reply* r = slot(task);
  if (!r) return nullptr;
  r->type = Reply::Type::Integer;
  r->integer = value;
  return r;
}

void* create_nil(const redisReadTask* task) { return slot(task); }

void free_object(void*) {}

redisReplyObjectFunctions reply_functions{create_string, create_array, create_integer, create_nil, free_object};

Error protocol_error(std::string_view why) {
  return Error::upstream(ErrorCode::StoreUnavailable, "protocol error: " + std::string(why));
}

}  // namespace

ReplyReader::ReplyReader() { reset(); }

ReplyReader::~ReplyReader() {
  if (reader_) redisReaderFree(reader_);
}

void ReplyReader::reset() {
  if (reader_) redisReaderFree(reader_);
  reader_ = redisReaderCreateWithFunctions(&reply_functions);
  GH_CHECK(reader_ != nullptr);
  reader_->privdata = &building_;
  building_ = Reply{};
  broken_ = false;
}

void ReplyReader::feed(const char* data, std::size_t n) {
  if (!broken_ && redisReaderFeed(reader_, data, n) != REDIS_OK) broken_ = true;
}

Result<std::optional<Reply>> ReplyReader::next() {
  if (broken_) return protocol_error(reader_->errstr[0] ? reader_->errstr : "unreadable reply");
  void* r = nullptr;
  if (redisReaderGetReply(reader_, &r) != REDIS_OK) {
    broken_ = true;
    return protocol_error(reader_->errstr);
  }
  if (!r) return std::optional<Reply>{};
  return std::optional<Reply>{std::move(building_)};
}

}  // namespace gh::clients::redis
