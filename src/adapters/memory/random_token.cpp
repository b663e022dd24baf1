#include "adapters/memory/random_token.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace concertd::memory {
namespace {

void fill_from_urandom(unsigned char* out, std::size_t length) {
    const int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        throw std::system_error(errno, std::generic_category(), "open /dev/urandom");
    }
    std::size_t done = 0;
    while (done < length) {
        const ssize_t n = ::read(fd, out + done, length - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            const int error = n < 0 ? errno : EIO;
            ::close(fd);
            throw std::system_error(error, std::generic_category(), "read /dev/urandom");
        }
        done += static_cast<std::size_t>(n);
    }
    ::close(fd);
}

void fill_random(unsigned char* out, std::size_t length) {
    std::size_t done = 0;
    while (done < length) {
        const ssize_t n = ::getrandom(out + done, length - done, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == ENOSYS) {  // kernels before 3.17
                fill_from_urandom(out + done, length - done);
                return;
            }
            throw std::system_error(errno, std::generic_category(), "getrandom");
        }
        done += static_cast<std::size_t>(n);
    }
}

constexpr char kHexDigits[] = "0123456789abcdef";

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

}  // namespace

TokenBits random_token_bits() {
    unsigned char bytes[16];
    fill_random(bytes, sizeof bytes);
    TokenBits bits;
    std::memcpy(&bits.hi, bytes, 8);
    std::memcpy(&bits.lo, bytes + 8, 8);
    return bits;
}

std::string to_hex(TokenBits bits) {
    std::string text(kTokenHexLength, '0');
    for (std::size_t i = 0; i < 16; ++i) {
        text[15 - i] = kHexDigits[(bits.hi >> (4 * i)) & 0xF];
        text[31 - i] = kHexDigits[(bits.lo >> (4 * i)) & 0xF];
    }
    return text;
}

std::optional<TokenBits> parse_token_hex(std::string_view text) {
    if (text.size() != kTokenHexLength) {
        return std::nullopt;
    }
    TokenBits bits;
    for (std::size_t i = 0; i < kTokenHexLength; ++i) {
        const int value = hex_value(text[i]);
        if (value < 0) {
            return std::nullopt;
        }
        std::uint64_t& word = i < 16 ? bits.hi : bits.lo;
        word = (word << 4) | static_cast<std::uint64_t>(value);
    }
    return bits;
}

std::string random_token_hex() { return to_hex(random_token_bits()); }

}  // namespace concertd::memory
