// The MAC of a queue token: RFC 2104 HMAC-SHA1(secret, user ‖ seq as big-endian u64s), truncated
// to its first 16 bytes (a sound MAC: HMAC needs no collision resistance). The key's inner and
// outer pad blocks are compressed once, so each MAC costs 2 SHA-1 blocks instead of 4: it is
// checked on every request that carries a token (docs/performance.md, D1).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "adapters/redis/detail/sha1.hpp"

namespace concertd::redis {

class TokenMac {
public:
    static constexpr std::size_t kBytes = 16;
    using Bytes = std::array<unsigned char, kBytes>;

    explicit TokenMac(std::string_view key);

    Bytes operator()(std::uint64_t user, std::uint64_t seq) const;

    // TokenMac(key)(user, seq), with the last key's pads kept per thread: the secret changes
    // only when Redis loses its data, so the pads are almost never recomputed. No lock.
    static Bytes of(std::string_view key, std::uint64_t user, std::uint64_t seq);

private:
    detail::Sha1State inner_;  // after the ipad block
    detail::Sha1State outer_;  // after the opad block
};

}  // namespace concertd::redis
