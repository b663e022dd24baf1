#include "wiring/config.hpp"

#include "adapters/mysql/detail/mysql_connection.hpp"
#include "adapters/redis/redis_client.hpp"

#include <charconv>
#include <fstream>
#include <thread>

extern char** environ;

namespace concertd::wiring {

namespace {

// host:port[,host:port…], each port 1..65535.
bool is_broker_list(std::string_view text) {
    while (!text.empty()) {
        const auto comma = text.find(',');
        const auto broker = text.substr(0, comma);
        const auto colon = broker.rfind(':');
        if (colon == std::string_view::npos || colon == 0) return false;
        const auto port = broker.substr(colon + 1);
        int value = 0;
        const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
        if (error != std::errc() || end != port.data() + port.size() || value < 1 || value > 65535) {
            return false;
        }
        if (comma == std::string_view::npos) return true;
        text.remove_prefix(comma + 1);
    }
    return false;
}

std::int64_t parse_integer(const std::string& name, const std::string& text, std::int64_t min,
                           std::int64_t max) {
    std::int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value < min || value > max) {
        throw ConfigError(name + " must be an integer from " + std::to_string(min) + " to " +
                          std::to_string(max) + ", got '" + text + "'");
    }
    return value;
}

bool parse_bool(const std::string& name, const std::string& text) {
    if (text == "true" || text == "1" || text == "yes") return true;
    if (text == "false" || text == "0" || text == "no") return false;
    throw ConfigError(name + " must be true or false, got '" + text + "'");
}

app::Strategy parse_strategy_setting(const std::string& name, const std::string& text,
                                     bool atomic_allowed) {
    auto strategy = app::parse_strategy(text);
    if (!strategy || (*strategy == app::Strategy::kAtomic && !atomic_allowed)) {
        throw ConfigError(name + " must be one of pessimistic, optimistic, distributed" +
                          (atomic_allowed ? ", atomic" : "") + ", got '" + text + "'");
    }
    return *strategy;
}

void parse_listen(Config& config, const std::string& text) {
    auto colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0) {
        throw ConfigError("CONCERTD_LISTEN must be host:port, got '" + text + "'");
    }
    config.listen_host = text.substr(0, colon);
    if (config.listen_host.size() > 2 && config.listen_host.front() == '[') {
        config.listen_host = config.listen_host.substr(1, config.listen_host.size() - 2);
    }
    config.listen_port = static_cast<std::uint16_t>(
        parse_integer("CONCERTD_LISTEN port", text.substr(colon + 1), 0, 65535));
}

}  // namespace

Config::Database Config::database() const {
    if (database_url.starts_with("sqlite:")) return Database::kSqlite;
    if (database_url.starts_with("mysql://")) return Database::kMysql;
    return Database::kPostgres;
}

std::string Config::sqlite_path() const {
    std::string_view url = database_url;
    url.remove_prefix(std::string_view("sqlite:").size());
    if (url.starts_with("//")) url.remove_prefix(2);  // sqlite:///abs/path and sqlite://rel
    return std::string(url);
}

Config parse_config(const std::map<std::string, std::string>& values) {
    Config config;
    config.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    auto get = [&](const char* name) -> const std::string* {
        auto found = values.find(name);
        return found == values.end() ? nullptr : &found->second;
    };
    if (auto v = get("CONCERTD_LISTEN")) parse_listen(config, *v);
    if (auto v = get("CONCERTD_DATABASE_URL")) {
        config.database_url = *v;
        bool sqlite = config.database_url.starts_with("sqlite:") && !config.sqlite_path().empty();
        bool postgres = config.database_url.starts_with("postgresql://") ||
                        config.database_url.starts_with("postgres://");
        bool mysql = false;
        if (config.database_url.starts_with("mysql://")) {
            try {
                mysql::detail::parse_mysql_url(config.database_url);
                mysql = true;
            } catch (const std::invalid_argument& error) {
                throw ConfigError("CONCERTD_DATABASE_URL must be mysql://user:password@host:port/db"
                                  " (" + std::string(error.what()) + "), got '" + *v + "'");
            }
        }
        if (!sqlite && !postgres && !mysql) {
            throw ConfigError(
                "CONCERTD_DATABASE_URL must be sqlite:PATH, postgresql://... or mysql://..., got '" +
                *v + "'");
        }
        // Demo data is the embedded mode's default only.
        if (postgres || mysql) config.demo_data = false;
    }
    if (auto v = get("CONCERTD_DATABASE_POOL_SIZE")) {
        config.database_pool_size = static_cast<int>(parse_integer("CONCERTD_DATABASE_POOL_SIZE", *v, 1, 1000));
    }
    if (auto v = get("CONCERTD_REDIS_URL"); v && !v->empty()) {
        try {
            redis::parse_redis_url(*v);
        } catch (const std::invalid_argument&) {
            throw ConfigError("CONCERTD_REDIS_URL must be redis://host:port/db, got '" + *v + "'");
        }
        config.redis_url = *v;
    }
    if (auto v = get("CONCERTD_KAFKA_BROKERS"); v && !v->empty()) {
        if (!is_broker_list(*v)) {
            throw ConfigError("CONCERTD_KAFKA_BROKERS must be host:port[,host:port…], got '" + *v + "'");
        }
        config.kafka_brokers = *v;
    }
    if (auto v = get("CONCERTD_ADMIN_KEY"); v && !v->empty()) config.admin_key = *v;
    if (auto v = get("CONCERTD_DEMO_DATA")) config.demo_data = parse_bool("CONCERTD_DEMO_DATA", *v);
    if (auto v = get("CONCERTD_HOLD_SECONDS")) {
        config.hold_seconds = parse_integer("CONCERTD_HOLD_SECONDS", *v, 1, 86400);
    }
    if (auto v = get("CONCERTD_OUTBOX_RETENTION_SECONDS")) {
        config.outbox_retention_seconds =
            parse_integer("CONCERTD_OUTBOX_RETENTION_SECONDS", *v, 1, 365LL * 86400);
    }
    if (auto v = get("CONCERTD_QUEUE_ADMIT_PER_SECOND")) {
        config.queue.admit_per_second = parse_integer("CONCERTD_QUEUE_ADMIT_PER_SECOND", *v, 1, 1'000'000);
    }
    if (auto v = get("CONCERTD_QUEUE_MAX_ACTIVE")) {
        config.queue.max_active = parse_integer("CONCERTD_QUEUE_MAX_ACTIVE", *v, 1, 10'000'000);
    }
    if (auto v = get("CONCERTD_QUEUE_ACTIVE_TTL_SECONDS")) {
        config.queue.active_ttl_seconds = parse_integer("CONCERTD_QUEUE_ACTIVE_TTL_SECONDS", *v, 1, 86400);
    }
    if (auto v = get("CONCERTD_QUEUE_WAITING_TTL_SECONDS")) {
        config.queue.waiting_ttl_seconds = parse_integer("CONCERTD_QUEUE_WAITING_TTL_SECONDS", *v, 1, 86400);
    }
    if (auto v = get("CONCERTD_LOCK_SEAT")) {
        config.strategies.seat_hold = parse_strategy_setting("CONCERTD_LOCK_SEAT", *v, true);
    }
    if (auto v = get("CONCERTD_LOCK_POINTS")) {
        config.strategies.point_charge = parse_strategy_setting("CONCERTD_LOCK_POINTS", *v, false);
    }
    if (auto v = get("CONCERTD_LOCK_PAYMENT")) {
        config.strategies.payment = parse_strategy_setting("CONCERTD_LOCK_PAYMENT", *v, false);
    }
    if (auto v = get("CONCERTD_THREADS")) {
        config.threads = static_cast<int>(parse_integer("CONCERTD_THREADS", *v, 1, 256));
    }
    return config;
}

std::map<std::string, std::string> collect_settings(const std::optional<std::string>& file) {
    std::map<std::string, std::string> values;
    if (file) {
        std::ifstream in(*file);
        if (!in) throw ConfigError("--config: cannot read " + *file);
        std::string line;
        while (std::getline(in, line)) {
            if (line.empty() || line[0] == '#') continue;
            auto eq = line.find('=');
            if (eq == std::string::npos) throw ConfigError("--config: not KEY=VALUE: " + line);
            values[line.substr(0, eq)] = line.substr(eq + 1);
        }
    }
    for (char** entry = environ; *entry; ++entry) {
        std::string_view text(*entry);
        if (!text.starts_with("CONCERTD_")) continue;
        auto eq = text.find('=');
        if (eq == std::string_view::npos) continue;
        values[std::string(text.substr(0, eq))] = std::string(text.substr(eq + 1));
    }
    return values;
}

}  // namespace concertd::wiring
