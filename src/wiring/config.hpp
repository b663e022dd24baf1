// concertd's configuration: SPEC §4's variables with their defaults, read from the environment
// (and optionally a KEY=VALUE file given with --config, which the environment overrides).
#pragma once

#include <map>
#include <optional>
#include <stdexcept>
#include <string>

#include "app/ports/waiting_queue.hpp"
#include "app/strategy.hpp"

namespace concertd::wiring {

struct Config {
    std::string listen_host = "127.0.0.1";
    std::uint16_t listen_port = 8080;
    std::string database_url = "sqlite:var/concert.db";
    std::optional<std::string> redis_url;
    std::optional<std::string> kafka_brokers;
    std::optional<std::string> admin_key;
    bool demo_data = true;
    std::int64_t hold_seconds = 300;
    std::int64_t outbox_retention_seconds = 86400;  // published events kept this long
    app::QueueSettings queue;
    app::StrategyChoice strategies;
    int threads = 2;

    int database_pool_size = 0;  // database connections in all; 0: the back end's default per I/O thread

    enum class Database { kSqlite, kPostgres, kMysql };
    Database database() const;
    std::string sqlite_path() const;  // the file of a sqlite: URL
};

// A bad value: the message names the variable and what it must be, in one line.
class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Reads `values` (variable → text) over the defaults. Throws ConfigError.
Config parse_config(const std::map<std::string, std::string>& values);

// The CONCERTD_* variables of the environment, over those of `file` (KEY=VALUE lines) if given.
std::map<std::string, std::string> collect_settings(const std::optional<std::string>& file);

}  // namespace concertd::wiring
