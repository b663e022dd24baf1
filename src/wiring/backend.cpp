#include "wiring/backend.hpp"

#include "adapters/memory/catalog_cache.hpp"
#include "adapters/memory/distributed_lock.hpp"
#include "adapters/memory/waiting_queue.hpp"
#include "adapters/mysql/mysql_advisory_lock.hpp"
#include "adapters/mysql/mysql_catalog_store.hpp"
#include "adapters/mysql/mysql_migrations.hpp"
#include "adapters/mysql/mysql_outbox_store.hpp"
#include "adapters/mysql/mysql_payment_store.hpp"
#include "adapters/mysql/mysql_pool.hpp"
#include "adapters/mysql/mysql_reservation_store.hpp"
#include "adapters/mysql/mysql_waiting_queue.hpp"
#include "adapters/mysql/mysql_wallet_store.hpp"
#include "adapters/postgres/pg_advisory_lock.hpp"
#include "adapters/postgres/pg_catalog_store.hpp"
#include "adapters/postgres/pg_migrations.hpp"
#include "adapters/postgres/pg_outbox_store.hpp"
#include "adapters/postgres/pg_payment_store.hpp"
#include "adapters/postgres/pg_pool.hpp"
#include "adapters/postgres/pg_reservation_store.hpp"
#include "adapters/postgres/pg_waiting_queue.hpp"
#include "adapters/postgres/pg_wallet_store.hpp"
#include "adapters/sqlite/sqlite_catalog_store.hpp"
#include "adapters/sqlite/sqlite_database.hpp"
#include "adapters/sqlite/sqlite_outbox_store.hpp"
#include "adapters/sqlite/sqlite_payment_store.hpp"
#include "adapters/sqlite/sqlite_reservation_store.hpp"
#include "adapters/sqlite/sqlite_wallet_store.hpp"
#include "adapters/redis/read_barrier.hpp"
#include "adapters/redis/redis_catalog_cache.hpp"
#include "adapters/redis/redis_client.hpp"
#include "adapters/redis/redis_lock.hpp"
#include "adapters/redis/redis_waiting_queue.hpp"

namespace concertd::wiring {

namespace {

constexpr int kSqliteReaderThreads = 2;
constexpr int kPgConnectionsPerThreadDefault = 4;
// MariaDB runs a statement per round trip (no pipeline), so a request keeps its connection for
// more round trips than on PostgreSQL: with 4 per thread, 10,000 holds on one schedule waited
// past the pool's acquire timeout (bench/strategies.py, docs/mysql.md "Connections").
constexpr int kMysqlConnectionsPerThreadDefault = 8;
// A Redis lock outlives a stalled holder by at most this; the holder renews it while it works.
constexpr std::chrono::milliseconds kRedisLockLease{5000};

class EmbeddedBackend final : public Backend {
public:
    EmbeddedBackend(const Config& config, app::AppStats& stats, const app::ClockPort& clock)
        : database_(config.sqlite_path(), kSqliteReaderThreads, &stats.db_round_trips),
          catalog_(database_),
          reservations_(database_, stats),
          wallets_(database_, stats),
          payments_(database_, stats),
          outbox_(database_),
          ledger_(database_),
          queue_(config.queue, clock) {
        catalog = &catalog_;
        dependencies.emplace_back("database", &catalog_);
        reservations = &reservations_;
        wallets = &wallets_;
        payments = &payments_;
        outbox = &outbox_;
        ledger = &ledger_;
        queue = &queue_;
        lock = &lock_;
        cache = &cache_;
    }
    void quiesce() override { database_.join(); }

private:
    sqlite::SqliteDatabase database_;
    sqlite::SqliteCatalogStore catalog_;
    sqlite::SqliteReservationStore reservations_;
    sqlite::SqliteWalletStore wallets_;
    sqlite::SqlitePaymentStore payments_;
    sqlite::SqliteOutboxStore outbox_;
    sqlite::SqliteSalesLedgerStore ledger_;
    memory::MemoryWaitingQueue queue_;
    memory::MemoryDistributedLock lock_;
    memory::MemoryCatalogCache cache_;
};

// CONCERTD_DATABASE_POOL_SIZE is the connections in all, spread over the I/O threads.
int connections_per_thread(const Config& config, int per_thread_default) {
    return config.database_pool_size > 0
               ? std::max(1, (config.database_pool_size + config.threads - 1) / config.threads)
               : per_thread_default;
}

// The adapters of one server database, by type.
struct PostgresParts {
    using Pool = postgres::PgPool;
    using Catalog = postgres::PgCatalogStore;
    using Reservations = postgres::PgReservationStore;
    using Wallets = postgres::PgWalletStore;
    using Payments = postgres::PgPaymentStore;
    using Outbox = postgres::PgOutboxStore;
    using Ledger = postgres::PgSalesLedgerStore;
    using Queue = postgres::PgWaitingQueue;
    using Lock = postgres::PgAdvisoryLock;
    // The hold checks the queue token in its own first round trip (pg_token_gate).
    static constexpr bool kStoreChecksQueueToken = true;
    static void migrate(const Config& config) {
        postgres::apply_migrations(config.database_url, postgres::kPostgresMigrations);
    }
    static postgres::PgPoolOptions options(const Config& config, app::AppStats& stats) {
        postgres::PgPoolOptions options;
        options.conninfo = config.database_url;
        options.round_trips = &stats.db_round_trips;
        options.connections_per_thread = connections_per_thread(config, kPgConnectionsPerThreadDefault);
        return options;
    }
};

struct MysqlParts {  // MariaDB or MySQL 8 (docs/mysql.md)
    using Pool = mysql::MysqlPool;
    using Catalog = mysql::MysqlCatalogStore;
    using Reservations = mysql::MysqlReservationStore;
    using Wallets = mysql::MysqlWalletStore;
    using Payments = mysql::MysqlPaymentStore;
    using Outbox = mysql::MysqlOutboxStore;
    using Ledger = mysql::MysqlSalesLedgerStore;
    using Queue = mysql::MysqlWaitingQueue;
    using Lock = mysql::MysqlAdvisoryLock;
    static constexpr bool kStoreChecksQueueToken = false;
    static void migrate(const Config& config) {
        mysql::apply_migrations(mysql::detail::parse_mysql_url(config.database_url),
                                mysql::kMysqlMigrations);
    }
    static mysql::MysqlPoolOptions options(const Config& config, app::AppStats& stats) {
        mysql::MysqlPoolOptions options;
        options.endpoint = mysql::detail::parse_mysql_url(config.database_url);
        options.round_trips = &stats.db_round_trips;
        options.connections_per_thread = connections_per_thread(config, kMysqlConnectionsPerThreadDefault);
        return options;
    }
};

// Several processes on one database form one service: the queue and the lock live in the
// database, and no in-process cache serves what another process's write made stale.
template <class Parts>
class DatabaseBackend final : public Backend {
public:
    DatabaseBackend(const Config& config, app::AppStats& stats)
        : pool_(migrated(config, stats)),
          lock_pool_(Parts::options(config, stats)),
          catalog_(pool_),
          reservations_(pool_, stats),
          wallets_(pool_, stats),
          payments_(pool_, stats),
          outbox_(pool_),
          ledger_(pool_),
          queue_(pool_, config.queue),
          lock_(lock_pool_) {
        catalog = &catalog_;
        dependencies.emplace_back("database", &catalog_);
        reservations = &reservations_;
        wallets = &wallets_;
        payments = &payments_;
        outbox = &outbox_;
        ledger = &ledger_;
        queue = &queue_;
        store_checks_queue_token = Parts::kStoreChecksQueueToken;
        lock = &lock_;
        cache = &cache_;
    }

private:
    // The migrations run before the first pool opens a connection.
    static auto migrated(const Config& config, app::AppStats& stats) {
        Parts::migrate(config);
        return Parts::options(config, stats);
    }

    typename Parts::Pool pool_;
    // Lock holders keep a session each while their transaction runs on pool_: on one pool they
    // could take every connection the transactions need.
    typename Parts::Pool lock_pool_;
    typename Parts::Catalog catalog_;
    typename Parts::Reservations reservations_;
    typename Parts::Wallets wallets_;
    typename Parts::Payments payments_;
    typename Parts::Outbox outbox_;
    typename Parts::Ledger ledger_;
    typename Parts::Queue queue_;
    typename Parts::Lock lock_;
    memory::NullCatalogCache cache_;
};

class RedisHealth final : public app::DependencyHealth {
public:
    explicit RedisHealth(redis::RedisClient& client) : client_(client) {}
    app::Task<bool> ping() override { co_return co_await client_.ping(); }

private:
    redis::RedisClient& client_;
};

// The waiting queue, the lock and the cache in Redis: any number of processes on one database
// and one Redis behave as one service.
struct RedisParts {
    explicit RedisParts(const Config& config)
        : client(redis::parse_redis_url(*config.redis_url)),
          barrier(client),
          queue(client, config.queue, redis::RedisWaitingQueue::kDefaultKeyPrefix, &barrier),
          lock(client, kRedisLockLease),
          cache(client, redis::RedisCatalogCache::kDefaultKeyPrefix, &barrier),
          health(client) {}
    redis::RedisClient client;
    // One per process: a cached read's token check and cache check share each thread's calls.
    redis::ReadBarrier barrier;
    redis::RedisWaitingQueue queue;
    redis::RedisLock lock;
    redis::RedisCatalogCache cache;
    RedisHealth health;
};

}  // namespace

std::unique_ptr<Backend> open_backend(const Config& config, app::AppStats& stats,
                                      const app::ClockPort& clock) {
    std::unique_ptr<Backend> backend;
    if (config.database() == Config::Database::kPostgres) {
        backend = std::make_unique<DatabaseBackend<PostgresParts>>(config, stats);
    } else if (config.database() == Config::Database::kMysql) {
        backend = std::make_unique<DatabaseBackend<MysqlParts>>(config, stats);
    } else {
        backend = std::make_unique<EmbeddedBackend>(config, stats, clock);
    }
    if (config.redis_url) {
        auto parts = std::make_shared<RedisParts>(config);
        backend->queue = &parts->queue;
        backend->store_checks_queue_token = false;
        backend->lock = &parts->lock;
        backend->cache = &parts->cache;
        backend->dependencies.emplace_back("redis", &parts->health);
        backend->extra_parts.push_back(std::move(parts));
    }
    return backend;
}

}  // namespace concertd::wiring
