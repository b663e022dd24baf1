// Thin layer over hiredis 0.14.1 used only as the RESP reply decoder: each function names the
// hiredis call it wraps. No sockets here; the client moves the bytes (STYLE.md: hiredis notes).
// Commands are encoded by resp_writer (no sprintf, no argv copy).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "adapters/redis/redis_client.hpp"

struct redisReader;

namespace concertd::redis::detail {

// Malformed bytes from the server (the reader is then unusable; drop the connection).
class RedisProtocolError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// One redisReader (redisReaderCreate / redisReaderFree): bytes in, whole replies out.
class HiredisReader {
public:
    HiredisReader();
    ~HiredisReader();
    HiredisReader(const HiredisReader&) = delete;
    HiredisReader& operator=(const HiredisReader&) = delete;

    // redisReaderFeed. Throws RedisProtocolError.
    void feed(const char* data, std::size_t size);

    // redisReaderGetReply, the redisReply tree converted and freed (freeReplyObject);
    // nullopt while the next reply is incomplete. Throws RedisProtocolError.
    std::optional<RedisReply> get_reply();

private:
    redisReader* reader_ = nullptr;
};

}  // namespace concertd::redis::detail
