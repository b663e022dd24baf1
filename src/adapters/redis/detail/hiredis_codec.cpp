#include "adapters/redis/detail/hiredis_codec.hpp"

#include <hiredis/hiredis.h>

#include <new>

namespace concertd::redis::detail {

namespace {

// hiredis' reply tree into our owned type. Depth is bounded by hiredis (nine levels).
RedisReply convert(const redisReply& reply) {
    RedisReply out;
    switch (reply.type) {
        case REDIS_REPLY_NIL:
            out.type = RedisReply::Type::kNil;
            break;
        case REDIS_REPLY_INTEGER:
            out.type = RedisReply::Type::kInteger;
            out.integer = reply.integer;
            break;
        case REDIS_REPLY_STRING:
            out.type = RedisReply::Type::kString;
            out.text.assign(reply.str, reply.len);
            break;
        case REDIS_REPLY_STATUS:
            out.type = RedisReply::Type::kStatus;
            out.text.assign(reply.str, reply.len);
            break;
        case REDIS_REPLY_ERROR:
            out.type = RedisReply::Type::kError;
            out.text.assign(reply.str, reply.len);
            break;
        case REDIS_REPLY_ARRAY:
            out.type = RedisReply::Type::kArray;
            out.elements.reserve(reply.elements);
            for (std::size_t i = 0; i < reply.elements; ++i) {
                out.elements.push_back(convert(*reply.element[i]));
            }
            break;
        default:
            throw RedisProtocolError("redis: unknown reply type " + std::to_string(reply.type));
    }
    return out;
}

struct ReplyDeleter {
    void operator()(void* reply) const { freeReplyObject(reply); }
};

}  // namespace

HiredisReader::HiredisReader() : reader_(redisReaderCreate()) {
    if (reader_ == nullptr) throw std::bad_alloc();
}

HiredisReader::~HiredisReader() { redisReaderFree(reader_); }

void HiredisReader::feed(const char* data, std::size_t size) {
    if (redisReaderFeed(reader_, data, size) != REDIS_OK) {
        throw RedisProtocolError(std::string("redis: protocol error: ") + reader_->errstr);
    }
}

std::optional<RedisReply> HiredisReader::get_reply() {
    void* raw = nullptr;
    if (redisReaderGetReply(reader_, &raw) != REDIS_OK) {
        throw RedisProtocolError(std::string("redis: protocol error: ") + reader_->errstr);
    }
    if (raw == nullptr) return std::nullopt;
    std::unique_ptr<void, ReplyDeleter> owned(raw);
    return convert(*static_cast<const redisReply*>(raw));
}

}  // namespace concertd::redis::detail
