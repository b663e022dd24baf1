#include "adapters/mysql/mysql_pool.hpp"

#include "adapters/pool/connection_pool_impl.hpp"

namespace concertd::adapters {
template class ConnectionPool<mysql::detail::MysqlConnection>;
}  // namespace concertd::adapters

namespace concertd::mysql {

MysqlPool::MysqlPool(MysqlPoolOptions options)
    : options_(std::move(options)),
      pool_({options_.connections_per_thread, options_.acquire_timeout, "mysql"},
            [this](boost::asio::any_io_executor executor) {
                return detail::MysqlConnection::connect(std::move(executor), options_.endpoint,
                                                        options_.connect_timeout,
                                                        options_.session, options_.round_trips);
            }) {}

}  // namespace concertd::mysql
