#include "adapters/redis/detail/sha1.hpp"

#include <bit>
#include <cstring>

namespace concertd::redis::detail {

namespace {

// One round; the message schedule is kept in a 16-word ring (w[i & 15]).
template <class F>
inline void sha1_round(std::uint32_t (&w)[16], std::size_t i, std::uint32_t& a, std::uint32_t& b,
                       std::uint32_t& c, std::uint32_t& d, std::uint32_t& e, F f,
                       std::uint32_t k) {
    if (i >= 16) {
        w[i & 15] = std::rotl(w[(i - 3) & 15] ^ w[(i - 8) & 15] ^ w[(i - 14) & 15] ^ w[i & 15], 1);
    }
    const std::uint32_t next = std::rotl(a, 5) + f(b, c, d) + e + k + w[i & 15];
    e = d;
    d = c;
    c = std::rotl(b, 30);
    b = a;
    a = next;
}

}  // namespace

// Four loops of 20 rounds, one function and constant each: no branch per round (the token MAC
// runs two blocks on every request that carries a token).
void sha1_compress(Sha1State& state, const unsigned char* block) {
    std::uint32_t w[16];
    for (std::size_t i = 0; i < 16; ++i) {
        w[i] = std::uint32_t{block[4 * i]} << 24 | std::uint32_t{block[4 * i + 1]} << 16 |
               std::uint32_t{block[4 * i + 2]} << 8 | std::uint32_t{block[4 * i + 3]};
    }
    auto [a, b, c, d, e] = state;
    const auto choose = [](std::uint32_t x, std::uint32_t y, std::uint32_t z) {
        return (x & y) | (~x & z);
    };
    const auto parity = [](std::uint32_t x, std::uint32_t y, std::uint32_t z) { return x ^ y ^ z; };
    const auto majority = [](std::uint32_t x, std::uint32_t y, std::uint32_t z) {
        return (x & y) | (x & z) | (y & z);
    };
    std::size_t i = 0;
    for (; i < 20; ++i) sha1_round(w, i, a, b, c, d, e, choose, 0x5A827999);
    for (; i < 40; ++i) sha1_round(w, i, a, b, c, d, e, parity, 0x6ED9EBA1);
    for (; i < 60; ++i) sha1_round(w, i, a, b, c, d, e, majority, 0x8F1BBCDC);
    for (; i < 80; ++i) sha1_round(w, i, a, b, c, d, e, parity, 0xCA62C1D6);
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
}

Sha1Digest sha1_digest(const Sha1State& state) {
    Sha1Digest digest;
    for (std::size_t i = 0; i < state.size(); ++i) {
        for (std::size_t j = 0; j < 4; ++j) {
            digest[4 * i + j] = static_cast<unsigned char>(state[i] >> (24 - 8 * j));
        }
    }
    return digest;
}

Sha1Digest sha1(std::string_view data) {
    Sha1State state = kSha1Initial;
    const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
    std::size_t at = 0;
    for (; data.size() - at >= kSha1BlockBytes; at += kSha1BlockBytes) {
        sha1_compress(state, bytes + at);
    }
    // The tail, 0x80, zeros, the length in bits: one block, or two when the length does not fit.
    std::array<unsigned char, 2 * kSha1BlockBytes> tail{};
    const std::size_t rest = data.size() - at;
    if (rest > 0) std::memcpy(tail.data(), bytes + at, rest);
    tail[rest] = 0x80;
    const std::size_t tail_bytes = rest + 9 <= kSha1BlockBytes ? kSha1BlockBytes : 2 * kSha1BlockBytes;
    const std::uint64_t bits = static_cast<std::uint64_t>(data.size()) * 8;
    for (std::size_t i = 0; i < 8; ++i) {
        tail[tail_bytes - 1 - i] = static_cast<unsigned char>(bits >> (8 * i));
    }
    for (std::size_t block = 0; block < tail_bytes; block += kSha1BlockBytes) {
        sha1_compress(state, tail.data() + block);
    }
    return sha1_digest(state);
}

}  // namespace concertd::redis::detail
