#include "adapters/redis/detail/sha1.hpp"

#include <bit>
#include <cstring>
#include <utility>

namespace concertd::redis::detail {

namespace {

// Round I, with I known at compile time: the ring indexes, the function and the constant fold
// away. The message schedule is kept in a 16-word ring (w[I % 16]).
template <std::size_t I>
[[gnu::always_inline]] inline void sha1_round(std::uint32_t (&w)[16], std::uint32_t& a,
                                              std::uint32_t& b, std::uint32_t& c,
                                              std::uint32_t& d, std::uint32_t& e) {
    if constexpr (I >= 16) {
        w[I % 16] = std::rotl(w[(I - 3) % 16] ^ w[(I - 8) % 16] ^ w[(I - 14) % 16] ^ w[I % 16], 1);
    }
    std::uint32_t f = 0;
    std::uint32_t k = 0;
    if constexpr (I < 20) {
        f = (b & c) | (~b & d);
        k = 0x5A827999;
    } else if constexpr (I < 40) {
        f = b ^ c ^ d;
        k = 0x6ED9EBA1;
    } else if constexpr (I < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8F1BBCDC;
    } else {
        f = b ^ c ^ d;
        k = 0xCA62C1D6;
    }
    const std::uint32_t next = std::rotl(a, 5) + f + e + k + w[I % 16];
    e = d;
    d = c;
    c = std::rotl(b, 30);
    b = a;
    a = next;
}

template <std::size_t... I>
[[gnu::always_inline]] inline void sha1_rounds(std::index_sequence<I...>, std::uint32_t (&w)[16],
                                               std::uint32_t& a, std::uint32_t& b,
                                               std::uint32_t& c, std::uint32_t& d,
                                               std::uint32_t& e) {
    (sha1_round<I>(w, a, b, c, d, e), ...);
}

}  // namespace

// The 80 rounds unrolled (the token MAC runs two blocks on every request that carries a token).
void sha1_compress(Sha1State& state, const unsigned char* block) {
    std::uint32_t w[16];
    for (std::size_t i = 0; i < 16; ++i) {
        w[i] = std::uint32_t{block[4 * i]} << 24 | std::uint32_t{block[4 * i + 1]} << 16 |
               std::uint32_t{block[4 * i + 2]} << 8 | std::uint32_t{block[4 * i + 3]};
    }
    std::uint32_t a = state[0], b = state[1], c = state[2], d = state[3], e = state[4];
    sha1_rounds(std::make_index_sequence<80>{}, w, a, b, c, d, e);
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
    const std::size_t tail_bytes =
        rest + 9 <= kSha1BlockBytes ? kSha1BlockBytes : 2 * kSha1BlockBytes;
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
