// Unguessable 128-bit values for queue tokens and lock owners (SPEC §2: at least 128 bits of
// entropy), read from the kernel's CSPRNG, and their 32-digit lowercase hex form.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace concertd::memory {

struct TokenBits {
    std::uint64_t hi = 0;
    std::uint64_t lo = 0;

    bool operator==(const TokenBits&) const = default;
};

// The bits are uniformly random, so folding them is already a good hash.
struct TokenBitsHash {
    std::size_t operator()(const TokenBits& bits) const noexcept {
        return static_cast<std::size_t>(bits.lo ^ (bits.hi * 0x9E3779B97F4A7C15ULL));
    }
};

inline constexpr std::size_t kTokenHexLength = 32;

// 128 bits from getrandom() (or /dev/urandom where the call is missing). One system call per
// value and no buffering in the process, so a fork never hands the same bits to two processes.
// Throws std::system_error if the kernel gives no randomness.
TokenBits random_token_bits();

// 32 lowercase hex digits, `hi` first.
std::string to_hex(TokenBits bits);

// The inverse of to_hex(): exactly 32 lowercase hex digits, else nullopt.
std::optional<TokenBits> parse_token_hex(std::string_view text);

// A fresh random token in hex: random_token_bits() then to_hex().
std::string random_token_hex();

}  // namespace concertd::memory
