#include "adapters/redis/token_mac.hpp"

#include <cstring>
#include <optional>

namespace concertd::redis {

namespace {

using detail::kSha1BlockBytes;

void put_be64(unsigned char* out, std::uint64_t value) {
    for (int i = 7; i >= 0; --i) {
        out[i] = static_cast<unsigned char>(value);
        value >>= 8;
    }
}

// The last block of a message of 64 + `size` bytes (the pad block came first): `size` bytes,
// 0x80, zeros, the length in bits.
void finish(detail::Sha1State& state, const unsigned char* data, std::size_t size) {
    std::array<unsigned char, kSha1BlockBytes> block{};
    std::memcpy(block.data(), data, size);
    block[size] = 0x80;
    put_be64(block.data() + kSha1BlockBytes - 8, (kSha1BlockBytes + size) * 8);
    detail::sha1_compress(state, block.data());
}

}  // namespace

TokenMac::TokenMac(std::string_view key) {
    std::array<unsigned char, kSha1BlockBytes> block{};
    if (key.size() > kSha1BlockBytes) {
        const detail::Sha1Digest digest = detail::sha1(key);
        std::memcpy(block.data(), digest.data(), digest.size());
    } else if (!key.empty()) {
        std::memcpy(block.data(), key.data(), key.size());
    }
    std::array<unsigned char, kSha1BlockBytes> pad;
    for (std::size_t i = 0; i < kSha1BlockBytes; ++i) pad[i] = block[i] ^ 0x36;
    inner_ = detail::kSha1Initial;
    detail::sha1_compress(inner_, pad.data());
    for (std::size_t i = 0; i < kSha1BlockBytes; ++i) pad[i] = block[i] ^ 0x5c;
    outer_ = detail::kSha1Initial;
    detail::sha1_compress(outer_, pad.data());
}

TokenMac::Bytes TokenMac::operator()(std::uint64_t user, std::uint64_t seq) const {
    std::array<unsigned char, 16> message;
    put_be64(message.data(), user);
    put_be64(message.data() + 8, seq);
    detail::Sha1State inner = inner_;
    finish(inner, message.data(), message.size());
    const detail::Sha1Digest inner_digest = detail::sha1_digest(inner);
    detail::Sha1State outer = outer_;
    finish(outer, inner_digest.data(), inner_digest.size());
    const detail::Sha1Digest digest = detail::sha1_digest(outer);
    Bytes mac;
    std::memcpy(mac.data(), digest.data(), mac.size());
    return mac;
}

TokenMac::Bytes TokenMac::of(std::string_view key, std::uint64_t user, std::uint64_t seq) {
    struct Last {
        std::string key;
        std::optional<TokenMac> mac;
    };
    thread_local Last last;
    if (!last.mac || last.key != key) {
        last.mac.reset();  // a throwing assign must not leave the old key with the new pads
        last.key.assign(key);
        last.mac.emplace(key);
    }
    return (*last.mac)(user, seq);
}

}  // namespace concertd::redis
