// FIPS 180-4 SHA-1, with its compression function exposed so a caller can keep a midstate
// (token_mac keeps the HMAC pads' states). Redis names scripts by SHA-1 too.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace concertd::redis::detail {

using Sha1State = std::array<std::uint32_t, 5>;
using Sha1Digest = std::array<unsigned char, 20>;

inline constexpr Sha1State kSha1Initial{0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476,
                                        0xC3D2E1F0};
inline constexpr std::size_t kSha1BlockBytes = 64;

// One 64-byte block into `state`.
void sha1_compress(Sha1State& state, const unsigned char* block);

// The state as the 20 digest bytes (big-endian words).
Sha1Digest sha1_digest(const Sha1State& state);

// The whole message, padded.
Sha1Digest sha1(std::string_view data);

}  // namespace concertd::redis::detail
