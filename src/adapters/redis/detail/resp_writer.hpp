// RESP2 encoding of commands (an array of bulk strings), written straight into the caller's
// buffer with std::to_chars. hiredis' redisFormatCommandArgv needs an argv copy and formats
// every length with sprintf: it was ~16 % of a cached read's instructions (docs/performance.md).
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace concertd::redis::detail {

// Appends "*<n>\r\n" and "$<len>\r\n<bytes>\r\n" per part to `out`, with one resize. Binary-safe.
// Throws std::invalid_argument for no parts (Redis answers nothing to "*0", which would shift
// every later reply onto the wrong caller). Only std::bad_alloc otherwise, `out` then unchanged.
void append_command(std::string& out, std::span<const std::string_view> parts);

// Appends `verb body <keys.size()> keys... args...`: EVALSHA <sha1> or EVAL <source>.
void append_script_call(std::string& out, std::string_view verb, std::string_view body,
                        std::span<const std::string_view> keys,
                        std::span<const std::string_view> args);

}  // namespace concertd::redis::detail
