#include "adapters/redis/detail/hiredis_codec.hpp"

#include <hiredis/hiredis.h>

#include <cassert>
#include <climits>
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

void format_command_argv(const std::vector<std::string>& argv, std::string& out) {
    if (argv.empty()) throw std::invalid_argument("redis: empty command");
    if (argv.size() > static_cast<std::size_t>(INT_MAX)) {
        throw std::invalid_argument("redis: too many arguments");
    }
    std::vector<const char*> pointers;
    std::vector<std::size_t> lengths;
    pointers.reserve(argv.size());
    lengths.reserve(argv.size());
    for (const auto& arg : argv) {
        pointers.push_back(arg.data());
        lengths.push_back(arg.size());
    }
    char* command = nullptr;
    int length = redisFormatCommandArgv(&command, static_cast<int>(argv.size()), pointers.data(),
                                        lengths.data());
    if (length < 0 || command == nullptr) throw std::bad_alloc();
    try {
        out.append(command, static_cast<std::size_t>(length));
    } catch (...) {
        redisFreeCommand(command);
        throw;
    }
    redisFreeCommand(command);
}

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
