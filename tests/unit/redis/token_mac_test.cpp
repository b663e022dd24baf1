// TokenMac (pads precomputed) gives the same bytes as the HMAC it replaced, which rebuilt both
// pads from the key on every call: tokens issued before the change stay valid.
#include <gtest/gtest.h>

#include <array>
#include <boost/uuid/detail/sha1.hpp>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>

#include "adapters/redis/token_mac.hpp"

namespace concertd::redis {
namespace {

using Sha1Digest = std::array<unsigned char, 20>;

Sha1Digest finish(boost::uuids::detail::sha1& hash) {
    boost::uuids::detail::sha1::digest_type words;
    hash.get_digest(words);
    Sha1Digest digest;
    for (std::size_t i = 0; i < 5; ++i) {
        for (std::size_t j = 0; j < 4; ++j) {
            digest[4 * i + j] = static_cast<unsigned char>(words[i] >> (24 - 8 * j));
        }
    }
    return digest;
}

void put_be64(unsigned char* out, std::uint64_t value) {
    for (int i = 7; i >= 0; --i) {
        out[i] = static_cast<unsigned char>(value);
        value >>= 8;
    }
}

// The former token_mac of redis_waiting_queue.cpp, verbatim but for its name.
std::array<unsigned char, 16> old_token_mac(std::string_view key, std::uint64_t user,
                                            std::uint64_t seq) {
    constexpr std::size_t kBlock = 64;
    std::array<unsigned char, kBlock> block{};
    if (key.size() > kBlock) {
        boost::uuids::detail::sha1 hash;
        hash.process_bytes(key.data(), key.size());
        const Sha1Digest digest = finish(hash);
        std::memcpy(block.data(), digest.data(), digest.size());
    } else {
        std::memcpy(block.data(), key.data(), key.size());
    }
    std::array<unsigned char, 16> message;
    put_be64(message.data(), user);
    put_be64(message.data() + 8, seq);

    std::array<unsigned char, kBlock> pad;
    boost::uuids::detail::sha1 inner;
    for (std::size_t i = 0; i < kBlock; ++i) pad[i] = block[i] ^ 0x36;
    inner.process_bytes(pad.data(), pad.size());
    inner.process_bytes(message.data(), message.size());
    const Sha1Digest inner_digest = finish(inner);

    boost::uuids::detail::sha1 outer;
    for (std::size_t i = 0; i < kBlock; ++i) pad[i] = block[i] ^ 0x5c;
    outer.process_bytes(pad.data(), pad.size());
    outer.process_bytes(inner_digest.data(), inner_digest.size());
    const Sha1Digest digest = finish(outer);

    std::array<unsigned char, 16> mac;
    std::memcpy(mac.data(), digest.data(), mac.size());
    return mac;
}

std::string hex(const TokenMac::Bytes& bytes) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char byte : bytes) {
        out += kHex[byte >> 4];
        out += kHex[byte & 0xF];
    }
    return out;
}

TEST(TokenMacTest, SameBytesAsTheFormerHmac) {
    constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
    const std::uint64_t ids[] = {0, 1, 42, 1'000'000, 0x0123456789abcdefULL, kMax};
    // The real secret is 64 hex digits (one SHA-1 block); the others take the other key paths.
    const std::string keys[] = {"", "k", std::string(63, 's'),
                                "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
                                std::string(65, 'l'), std::string(300, '\xff')};
    for (const std::string& key : keys) {
        const TokenMac mac(key);
        for (std::uint64_t user : ids) {
            for (std::uint64_t seq : ids) {
                SCOPED_TRACE(testing::Message() << key.size() << " " << user << " " << seq);
                const auto expected = old_token_mac(key, user, seq);
                EXPECT_EQ(mac(user, seq), expected);
                EXPECT_EQ(TokenMac::of(key, user, seq), expected);  // switching keys each time
            }
        }
    }
}

// Python: hmac.new(key, struct.pack('>QQ', user, seq), hashlib.sha1).hexdigest()[:32]
TEST(TokenMacTest, MatchesAnIndependentHmacSha1) {
    EXPECT_EQ(hex(TokenMac(std::string("0123456789abcdef") + "0123456789abcdef" +
                           "0123456789abcdef" + "0123456789abcdef")(42, 7)),
              "50ad3f074aa256d23e2bace52ca22157");
    EXPECT_EQ(hex(TokenMac("")(0, 0)), "c69c13e005ae8ec628ec1869f334ca05");
    EXPECT_EQ(hex(TokenMac(std::string(65, 'k'))(std::numeric_limits<std::uint64_t>::max(), 1)),
              "fc4f8d154c375584e8e814811c7a5a54");
}

}  // namespace
}  // namespace concertd::redis
