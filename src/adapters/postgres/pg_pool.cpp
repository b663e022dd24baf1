#include "adapters/postgres/pg_pool.hpp"

#include "adapters/pool/connection_pool_impl.hpp"

namespace concertd::adapters {
template class ConnectionPool<postgres::detail::PgConnection>;
}  // namespace concertd::adapters

namespace concertd::postgres {

PgPool::PgPool(PgPoolOptions options)
    : options_(std::move(options)),
      pool_({options_.connections_per_thread, options_.acquire_timeout, "postgres"},
            [this](boost::asio::any_io_executor executor) {
                return detail::PgConnection::connect(std::move(executor), options_.conninfo,
                                                     options_.connect_timeout,
                                                     options_.round_trips);
            }) {}

}  // namespace concertd::postgres
