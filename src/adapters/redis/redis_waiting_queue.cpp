#include "adapters/redis/redis_waiting_queue.hpp"

#include <sys/random.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <utility>

#include "adapters/redis/token_mac.hpp"
#include "domain/outcome.hpp"

namespace concertd::redis {

namespace {

using domain::DependencyUnavailable;

// --- tokens: user ‖ seq ‖ HMAC-SHA1(secret, user ‖ seq)[0..16), in hex ------------------------

constexpr std::size_t kMacBytes = TokenMac::kBytes;
constexpr std::size_t kSecretBytes = 32;
constexpr char kHexDigits[] = "0123456789abcdef";

void put_be64(unsigned char* out, std::uint64_t value) {
    for (int i = 7; i >= 0; --i) {
        out[i] = static_cast<unsigned char>(value);
        value >>= 8;
    }
}

void append_hex(std::string& out, const unsigned char* bytes, std::size_t size) {
    for (std::size_t i = 0; i < size; ++i) {
        out += kHexDigits[bytes[i] >> 4];
        out += kHexDigits[bytes[i] & 0xF];
    }
}

std::string make_token(std::string_view key, std::uint64_t user, std::uint64_t seq) {
    std::array<unsigned char, 16> ids;
    put_be64(ids.data(), user);
    put_be64(ids.data() + 8, seq);
    const auto mac = TokenMac::of(key, user, seq);
    std::string token;
    token.reserve(RedisWaitingQueue::kTokenLength);
    append_hex(token, ids.data(), ids.size());
    append_hex(token, mac.data(), mac.size());
    return token;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

struct TokenParts {
    std::uint64_t user = 0;
    std::uint64_t seq = 0;
    std::array<unsigned char, kMacBytes> mac{};
};

// Exactly kTokenLength lowercase hex digits, else nullopt.
std::optional<TokenParts> parse_token(std::string_view token) {
    if (token.size() != RedisWaitingQueue::kTokenLength) return std::nullopt;
    std::array<unsigned char, 32> bytes;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        const int hi = hex_value(token[2 * i]);
        const int lo = hex_value(token[2 * i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        bytes[i] = static_cast<unsigned char>(hi << 4 | lo);
    }
    TokenParts parts;
    for (std::size_t i = 0; i < 8; ++i) {
        parts.user = parts.user << 8 | bytes[i];
        parts.seq = parts.seq << 8 | bytes[8 + i];
    }
    std::memcpy(parts.mac.data(), bytes.data() + 16, kMacBytes);
    return parts;
}

bool mac_matches(std::string_view key, const TokenParts& parts) {
    const auto expected = TokenMac::of(key, parts.user, parts.seq);
    unsigned char diff = 0;  // constant time: no early exit on the first differing byte
    for (std::size_t i = 0; i < kMacBytes; ++i) diff |= expected[i] ^ parts.mac[i];
    return diff == 0;
}

// Tokens whose MAC this thread has checked under one secret, so that the reads of a session skip
// the two SHA-1 blocks. An entry is only a fact about the token's bytes (the MAC is right), never
// about its state (the barrier decides that); it matches only all of user, seq and MAC, compared
// without an early exit. The secret is held, so its address is not reused while entries name it.
class VerifiedTokens {
public:
    static constexpr std::size_t kSlots = 256;  // direct-mapped by (user, seq): 10 KB per thread

    bool contains(const std::shared_ptr<const std::string>& secret, const TokenParts& parts) const {
        if (secret != secret_) return false;
        const Slot& slot = slots_[slot_of(parts)];
        unsigned char diff = slot.used ? 0 : 1;
        diff |= static_cast<unsigned char>((slot.user != parts.user) | (slot.seq != parts.seq));
        for (std::size_t i = 0; i < kMacBytes; ++i) diff |= slot.mac[i] ^ parts.mac[i];
        return diff == 0;
    }

    void add(const std::shared_ptr<const std::string>& secret, const TokenParts& parts) {
        if (secret != secret_) {
            secret_ = secret;
            slots_.fill(Slot{});
        }
        slots_[slot_of(parts)] = Slot{true, parts.user, parts.seq, parts.mac};
    }

private:
    struct Slot {
        bool used = false;
        std::uint64_t user = 0;
        std::uint64_t seq = 0;
        std::array<unsigned char, kMacBytes> mac{};
    };
    static std::size_t slot_of(const TokenParts& parts) {
        const std::uint64_t mixed = (parts.user ^ parts.seq * 0x9E3779B97F4A7C15ULL);
        return static_cast<std::size_t>(mixed ^ (mixed >> 29)) % kSlots;
    }

    std::shared_ptr<const std::string> secret_;
    std::array<Slot, kSlots> slots_{};
};

// mac_matches, remembered per thread (tokens are checked on every request that carries one).
bool mac_matches_cached(const std::shared_ptr<const std::string>& key, const TokenParts& parts) {
    thread_local VerifiedTokens verified;
    if (verified.contains(key, parts)) return true;
    if (!mac_matches(*key, parts)) return false;
    verified.add(key, parts);
    return true;
}

// 32 bytes from the kernel's CSPRNG, in hex: the candidate secret.
std::string random_secret_hex() {
    std::array<unsigned char, kSecretBytes> bytes;
    std::size_t filled = 0;
    while (filled < bytes.size()) {
        const ssize_t n = ::getrandom(bytes.data() + filled, bytes.size() - filled, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw std::system_error(errno, std::generic_category(), "getrandom");
        }
        filled += static_cast<std::size_t>(n);
    }
    std::string hex;
    append_hex(hex, bytes.data(), bytes.size());
    return hex;
}

// --- replies -------------------------------------------------------------------------------------

const RedisReply& checked(const RedisReply& reply) {
    if (reply.is_error()) throw DependencyUnavailable("redis: queue script failed: " + reply.text);
    return reply;
}

std::int64_t integer_at(const RedisReply& reply, std::size_t index) {
    checked(reply);
    if (reply.type != RedisReply::Type::kArray || index >= reply.elements.size() ||
        reply.elements[index].type != RedisReply::Type::kInteger) {
        throw DependencyUnavailable("redis: unexpected reply from a queue script");
    }
    return reply.elements[index].integer;
}

std::int64_t integer_of(const RedisReply& reply) {
    checked(reply);
    if (reply.type != RedisReply::Type::kInteger) {
        throw DependencyUnavailable("redis: unexpected reply to a queue command");
    }
    return reply.integer;
}

// --- scripts -------------------------------------------------------------------------------------
// Every script gets the same seven keys (see the header) and ARGV[1] = kPollSlots,
// ARGV[2] = waiting_ttl in ms. `now` is Redis's clock; numbers go to Redis as integer strings.

constexpr std::string_view kPrelude = R"lua(
local line, poll, seqk, active, aseq, secret, adm =
    KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local SLOTS, WAITING_TTL = tonumber(ARGV[1]), tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local function int(x) return string.format('%.0f', x) end
local function slot(seq) return '#' .. int(seq % SLOTS) end
local function touch(seq)
    redis.call('BITFIELD', poll, 'SET', 'u32', slot(seq), int(now % 4294967296))
end
-- A waiting token is live while polled within WAITING_TTL and its slot not reused.
local function is_live_polled(seq, last_seq, polled)
    return seq > last_seq - SLOTS and (now - polled) % 4294967296 < WAITING_TTL
end
local function is_live(seq, last_seq)
    if seq <= last_seq - SLOTS then return false end
    return is_live_polled(seq, last_seq, redis.call('BITFIELD', poll, 'GET', 'u32', slot(seq))[1])
end
)lua";

// ARGV[3] secret, ARGV[4] user. {-1}: the secret changed. {1, seq}: ACTIVE.
// {0, seq, position, created}: WAITING.
constexpr std::string_view kIssue = R"lua(
if redis.call('GET', secret) ~= ARGV[3] then return {-1} end
local user = ARGV[4]
local active_seq = redis.call('HGET', aseq, user)
if active_seq then
    local expiry = redis.call('ZSCORE', active, user)
    if expiry and tonumber(expiry) > now then return {1, tonumber(active_seq)} end
    redis.call('ZREM', active, user)
    redis.call('HDEL', aseq, user)
end
local last_seq = tonumber(redis.call('GET', seqk) or '0')
local seq = redis.call('ZSCORE', line, user)
if seq then
    seq = tonumber(seq)
    if is_live(seq, last_seq) then
        touch(seq)
        return {0, seq, redis.call('ZRANK', line, user) + 1, 0}
    end
    redis.call('ZREM', line, user)
end
seq = redis.call('INCR', seqk)
redis.call('ZADD', line, int(seq), user)
touch(seq)
return {0, seq, redis.call('ZCARD', line), 1}
)lua";

// ARGV[3] secret, ARGV[4] user, ARGV[5] seq (the MAC was checked by the caller).
// {-1}: the secret changed. {0, position}: WAITING. {1}: ACTIVE. {2}: not live.
constexpr std::string_view kFind = R"lua(
if redis.call('GET', secret) ~= ARGV[3] then return {-1} end
local user, seq = ARGV[4], tonumber(ARGV[5])
local active_seq = redis.call('HGET', aseq, user)
if active_seq then
    if tonumber(active_seq) ~= seq then return {2} end
    local expiry = redis.call('ZSCORE', active, user)
    if expiry and tonumber(expiry) > now then return {1} end
    return {2}
end
local in_line = redis.call('ZSCORE', line, user)
if not in_line or tonumber(in_line) ~= seq then return {2} end
if not is_live(seq, tonumber(redis.call('GET', seqk) or '0')) then return {2} end
touch(seq)
return {0, redis.call('ZRANK', line, user) + 1}
)lua";

// ARGV[3] user. Out of the line first: an admission between two removals cannot save it.
constexpr std::string_view kExpireUser = R"lua(
redis.call('ZREM', line, ARGV[3])
redis.call('ZREM', active, ARGV[3])
redis.call('HDEL', aseq, ARGV[3])
return 1
)lua";

// ARGV[3] admit_per_second, [4] max_active, [5] active_ttl ms, [6] head drops max,
// [7] expiries max, [8] sweep batch, [9] sweep step ms. {admitted, dropped, swept}.
constexpr std::string_view kAdmit = R"lua(
local RATE, MAX_ACTIVE, ACTIVE_TTL = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local HEAD_DROPS, EXPIRIES = tonumber(ARGV[6]), tonumber(ARGV[7])
local SWEEP_BATCH, SWEEP_STEP = tonumber(ARGV[8]), tonumber(ARGV[9])
local last_seq = tonumber(redis.call('GET', seqk) or '0')

local expired = redis.call('ZRANGEBYSCORE', active, '-inf', int(now), 'LIMIT', 0, EXPIRIES)
for _, user in ipairs(expired) do
    redis.call('ZREM', active, user)
    redis.call('HDEL', aseq, user)
end

-- The bucket, in thousandths of an admission: full on first use; a late ticker catches up at
-- most one second; a clock that steps back adds nothing.
local state = redis.call('HMGET', adm, 'b', 't', 'c', 's')
local capacity = RATE * 1000
local budget, refilled = tonumber(state[1]), tonumber(state[2])
if not budget or not refilled then
    budget, refilled = capacity, now
else
    local elapsed = math.min(math.max(now - refilled, 0), 1000)
    budget = math.min(capacity, budget + elapsed * RATE)
    refilled = math.max(refilled, now)
end

local active_count = redis.call('ZCARD', active)
local admitted, dropped = 0, 0
while budget >= 1000 and active_count < MAX_ACTIVE and dropped < HEAD_DROPS do
    local want = math.min(math.floor(budget / 1000), MAX_ACTIVE - active_count)
    local head = redis.call('ZRANGE', line, 0, int(want - 1), 'WITHSCORES')
    if #head == 0 then break end
    for i = 1, #head, 2 do
        local user, seq = head[i], tonumber(head[i + 1])
        redis.call('ZREM', line, user)
        if is_live(seq, last_seq) then
            redis.call('ZADD', active, int(now + ACTIVE_TTL), user)
            redis.call('HSET', aseq, user, int(seq))
            admitted = admitted + 1
            active_count = active_count + 1
            budget = budget - 1000
        else
            dropped = dropped + 1  -- a dropped token costs no budget
        end
    end
end

-- The sweep walks the line by seq, SWEEP_BATCH entries per SWEEP_STEP of Redis time however
-- many processes tick, and starts over at the head after the tail.
local cursor, stepped = tonumber(state[3]) or 0, tonumber(state[4]) or 0
local swept = 0
if now - stepped >= SWEEP_STEP or now < stepped then
    local batch = redis.call('ZRANGEBYSCORE', line, '(' .. int(cursor), '+inf', 'WITHSCORES',
                             'LIMIT', 0, SWEEP_BATCH)
    if #batch > 0 then
        -- One BITFIELD for the whole batch (a call per entry costs ~25% more).
        local reads = {poll}
        for i = 2, #batch, 2 do
            reads[#reads + 1] = 'GET'
            reads[#reads + 1] = 'u32'
            reads[#reads + 1] = slot(tonumber(batch[i]))
        end
        local polled = redis.call('BITFIELD', unpack(reads))
        for i = 1, #batch, 2 do
            local seq = tonumber(batch[i + 1])
            if not is_live_polled(seq, last_seq, polled[(i + 1) / 2]) then
                redis.call('ZREM', line, batch[i])
                swept = swept + 1
            end
            cursor = seq
        end
    end
    if #batch < 2 * SWEEP_BATCH then cursor = 0 end
    stepped = now
end
redis.call('HSET', adm, 'b', int(budget), 't', int(refilled), 'c', int(cursor), 's', int(stepped))
return {admitted, dropped, swept}
)lua";

struct Scripts {
    static std::string with_prelude(std::string_view body) {
        return std::string(kPrelude) + std::string(body);
    }
    RedisScript issue{with_prelude(kIssue)};
    RedisScript find{with_prelude(kFind)};
    RedisScript expire_user{with_prelude(kExpireUser)};
    RedisScript admit{with_prelude(kAdmit)};
};

const Scripts& scripts() {
    static const Scripts built;  // thread-safe static initialization
    return built;
}

void require_positive(std::int64_t value, const char* name) {
    if (value < 1) {
        throw std::invalid_argument(std::string("queue setting must be at least 1: ") + name);
    }
}

}  // namespace

RedisWaitingQueue::RedisWaitingQueue(RedisClient& client, app::QueueSettings settings,
                                     std::string key_prefix, ReadBarrier* barrier)
    : client_(client),
      settings_(settings),
      prefix_(std::move(key_prefix)),
      keys_{prefix_ + "line",   prefix_ + "poll",   prefix_ + "seq", prefix_ + "active",
            prefix_ + "aseq",   prefix_ + "secret", prefix_ + "adm"},
      token_keys_(std::make_shared<const TokenKeys>(
          TokenKeys{prefix_ + "secret", prefix_ + "aseq", prefix_ + "active"})),
      own_barrier_(barrier ? nullptr : std::make_unique<ReadBarrier>(client)),
      barrier_(barrier ? *barrier : *own_barrier_) {
    require_positive(settings.admit_per_second, "admit_per_second");
    require_positive(settings.max_active, "max_active");
    require_positive(settings.active_ttl_seconds, "active_ttl_seconds");
    require_positive(settings.waiting_ttl_seconds, "waiting_ttl_seconds");
}

std::shared_ptr<const std::string> RedisWaitingQueue::cached_secret() {
    std::lock_guard lock(secret_mutex_);
    return secret_;
}

boost::asio::awaitable<std::shared_ptr<const std::string>> RedisWaitingQueue::secret() {
    if (auto cached = cached_secret()) co_return cached;
    co_return co_await reload_secret();
}

boost::asio::awaitable<std::shared_ptr<const std::string>> RedisWaitingQueue::reload_secret() {
    const std::string key = prefix_ + "secret";
    // Whoever comes first sets it; everyone reads the winner's.
    std::vector<RedisReply> replies = co_await client_.pipeline(
        {{"SET", key, random_secret_hex(), "NX"}, {"GET", key}});
    checked(replies.at(0));
    const RedisReply& got = checked(replies.at(1));
    if (got.type != RedisReply::Type::kString || got.text.empty()) {
        throw DependencyUnavailable("redis: no queue secret");
    }
    auto loaded = std::make_shared<const std::string>(got.text);
    std::lock_guard lock(secret_mutex_);
    secret_ = loaded;
    co_return loaded;
}

domain::QueueTicket RedisWaitingQueue::active_ticket(std::string token,
                                                     domain::UserId user) const {
    domain::QueueTicket ticket;
    ticket.token = std::move(token);
    ticket.user_id = user;
    ticket.status = domain::TokenStatus::kActive;
    return ticket;
}

domain::QueueTicket RedisWaitingQueue::waiting_ticket(std::string token, domain::UserId user,
                                                      std::int64_t position) const {
    domain::QueueTicket ticket;
    ticket.token = std::move(token);
    ticket.user_id = user;
    ticket.status = domain::TokenStatus::kWaiting;
    ticket.position = position;
    ticket.estimated_wait_seconds =
        (position + settings_.admit_per_second - 1) / settings_.admit_per_second;
    return ticket;
}

boost::asio::awaitable<app::IssuedTicket> RedisWaitingQueue::issue(domain::UserId user) {
    std::shared_ptr<const std::string> key = co_await secret();
    for (int attempt = 0;; ++attempt) {
        const RedisReply reply = co_await client_.eval(
            scripts().issue, keys_,
            {std::to_string(kPollSlots), std::to_string(settings_.waiting_ttl_seconds * 1000),
             *key, std::to_string(user)});
        const std::int64_t code = integer_at(reply, 0);
        if (code == -1) {
            if (attempt > 0) throw DependencyUnavailable("redis: the queue secret keeps changing");
            key = co_await reload_secret();
            continue;
        }
        const auto seq = static_cast<std::uint64_t>(integer_at(reply, 1));
        std::string token = make_token(*key, static_cast<std::uint64_t>(user), seq);
        if (code == 1) co_return app::IssuedTicket{active_ticket(std::move(token), user), false};
        co_return app::IssuedTicket{waiting_ticket(std::move(token), user, integer_at(reply, 2)),
                                    integer_at(reply, 3) == 1};
    }
}

boost::asio::awaitable<std::optional<domain::QueueTicket>> RedisWaitingQueue::find(
    std::string token) {
    const std::optional<TokenParts> parts = parse_token(token);
    if (!parts) co_return std::nullopt;
    std::shared_ptr<const std::string> key = cached_secret();
    if (!key) key = co_await reload_secret();
    const auto user = static_cast<domain::UserId>(parts->user);
    if (!mac_matches_cached(key, *parts)) co_return std::nullopt;  // forged: no round trip
    // ACTIVE or expired: answered by a barrier call shared with the thread's other reads.
    switch (co_await barrier_.check_token(token_keys_, key, user, parts->seq)) {
        case TokenCheck::kActive: co_return active_ticket(std::move(token), user);
        case TokenCheck::kNotLive: co_return std::nullopt;
        case TokenCheck::kUnsure: break;  // WAITING (a look is a poll), unknown, new secret
    }
    for (int attempt = 0;; ++attempt) {
        if (attempt > 0 && !mac_matches(*key, *parts)) co_return std::nullopt;
        const RedisReply reply = co_await client_.eval(
            scripts().find, keys_,
            {std::to_string(kPollSlots), std::to_string(settings_.waiting_ttl_seconds * 1000),
             *key, std::to_string(static_cast<domain::UserId>(parts->user)),
             std::to_string(parts->seq)});
        const std::int64_t code = integer_at(reply, 0);
        if (code == -1) {
            if (attempt > 0) throw DependencyUnavailable("redis: the queue secret keeps changing");
            key = co_await reload_secret();  // the token is checked again under the new key
            continue;
        }
        if (code == 0) co_return waiting_ticket(std::move(token), user, integer_at(reply, 1));
        if (code == 1) co_return active_ticket(std::move(token), user);
        co_return std::nullopt;
    }
}

boost::asio::awaitable<void> RedisWaitingQueue::expire_user(domain::UserId user) {
    const RedisReply reply = co_await client_.eval(
        scripts().expire_user, keys_,
        {std::to_string(kPollSlots), std::to_string(settings_.waiting_ttl_seconds * 1000),
         std::to_string(user)});
    integer_of(reply);
}

boost::asio::awaitable<std::int64_t> RedisWaitingQueue::admit(domain::TimePoint) {
    const RedisReply reply = co_await client_.eval(
        scripts().admit, keys_,
        {std::to_string(kPollSlots), std::to_string(settings_.waiting_ttl_seconds * 1000),
         std::to_string(settings_.admit_per_second), std::to_string(settings_.max_active),
         std::to_string(settings_.active_ttl_seconds * 1000),
         std::to_string(kMaxHeadDropsPerAdmit), std::to_string(kMaxActiveExpiriesPerAdmit),
         std::to_string(kSweepBatch), std::to_string(kSweepStep.count())});
    co_return integer_at(reply, 0);
}

boost::asio::awaitable<app::QueueStats> RedisWaitingQueue::stats() {
    const std::vector<RedisReply> replies =
        co_await client_.pipeline({{"ZCARD", prefix_ + "line"}, {"ZCARD", prefix_ + "active"}});
    co_return app::QueueStats{integer_of(replies.at(0)), integer_of(replies.at(1))};
}

}  // namespace concertd::redis
