// The RESP encoder against hiredis' redisFormatCommandArgv, which it replaced: same bytes.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/redis/detail/resp_writer.hpp"

namespace concertd::redis::detail {
namespace {

std::string hiredis_format(const std::vector<std::string_view>& parts) {
    std::vector<const char*> pointers;
    std::vector<std::size_t> lengths;
    for (std::string_view part : parts) {
        pointers.push_back(part.data());
        lengths.push_back(part.size());
    }
    char* command = nullptr;
    const int length = redisFormatCommandArgv(&command, static_cast<int>(parts.size()),
                                              pointers.data(), lengths.data());
    EXPECT_GT(length, 0);
    std::string out(command, static_cast<std::size_t>(length));
    redisFreeCommand(command);
    return out;
}

TEST(RespWriterTest, CommandsMatchHiredis) {
    const std::string binary("a\0b\r\nc", 6);
    const std::string long_text(12'345, 'x');
    std::vector<std::string> many;
    for (int i = 0; i < 120; ++i) many.push_back(std::to_string(i * 7919));
    std::vector<std::vector<std::string_view>> cases = {
        {"PING"},
        {"SET", "key", binary},
        {"SET", "", ""},
        {"SET", "k", long_text},
        {"EVALSHA", "0123456789abcdef0123456789abcdef01234567", "0"},
        {std::string_view(long_text.data(), 9), std::string_view(long_text.data(), 10),
         std::string_view(long_text.data(), 99), std::string_view(long_text.data(), 100)},
        std::vector<std::string_view>(many.begin(), many.end()),
    };
    for (const auto& parts : cases) {
        std::string out = "prefix";  // appended, never overwritten
        append_command(out, parts);
        EXPECT_EQ(out, "prefix" + hiredis_format(parts));
    }
}

TEST(RespWriterTest, ScriptCallsMatchHiredis) {
    const std::string_view keys[] = {"k1", "", "key:three"};
    const std::string_view args[] = {"4194304", "60000", std::string_view("\0\n", 2)};
    std::string out;
    append_script_call(out, "EVALSHA", "sha", keys, args);
    EXPECT_EQ(out, hiredis_format({"EVALSHA", "sha", "3", "k1", "", "key:three", "4194304",
                                   "60000", std::string_view("\0\n", 2)}));
    out.clear();
    append_script_call(out, "EVAL", "return 1", {}, {});
    EXPECT_EQ(out, hiredis_format({"EVAL", "return 1", "0"}));

    std::vector<std::string> twelve(12, "k");
    std::vector<std::string_view> key_views(twelve.begin(), twelve.end());
    out.clear();
    append_script_call(out, "EVAL", "s", key_views, {});
    std::vector<std::string_view> expected = {"EVAL", "s", "12"};
    expected.insert(expected.end(), key_views.begin(), key_views.end());
    EXPECT_EQ(out, hiredis_format(expected));
}

TEST(RespWriterTest, RejectsAnEmptyCommand) {
    std::string out = "kept";
    EXPECT_THROW(append_command(out, {}), std::invalid_argument);
    EXPECT_EQ(out, "kept");
}

}  // namespace
}  // namespace concertd::redis::detail
