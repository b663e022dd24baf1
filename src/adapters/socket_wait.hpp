// Waiting on a database client library's socket (libpq, libmariadb) from a coroutine: the
// library does the I/O, Asio only says when the socket is ready. Shared by the storage adapters.
#pragma once

#include <poll.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace concertd::adapters {

// A zero-timeout level check of the socket: what of `events` (POLLIN, POLLOUT) it is ready for
// now. Asio's epoll reactor is edge-triggered and never completes a wait speculatively, and the
// libraries do not always read the socket dry, so a wait must look first or it could sleep on
// bytes that are already there.
inline short ready_now(int fd, short events) {
    pollfd entry{fd, events, 0};
    return ::poll(&entry, 1, 0) > 0 ? entry.revents : short{0};
}

// Waits until `socket` is ready for `events` (POLLIN, POLLOUT or both) or `deadline` expires.
// Returns false on expiry. Checks the level first (ready_now).
inline boost::asio::awaitable<bool> wait_socket(boost::asio::posix::stream_descriptor& socket,
                                                short events, boost::asio::steady_timer& deadline) {
    namespace asio = boost::asio;
    using asio::experimental::make_parallel_group;
    using asio::experimental::wait_for_one;
    using Wait = asio::posix::descriptor_base::wait_type;
    if (ready_now(socket.native_handle(), events) != 0) co_return true;
    if (events == (POLLIN | POLLOUT)) {
        auto [order, e1, e2, e3] =
            co_await make_parallel_group(socket.async_wait(Wait::wait_read, asio::deferred),
                                         socket.async_wait(Wait::wait_write, asio::deferred),
                                         deadline.async_wait(asio::deferred))
                .async_wait(wait_for_one(), asio::use_awaitable);
        co_return order[0] != 2;
    }
    auto type = events == POLLIN ? Wait::wait_read : Wait::wait_write;
    auto [order, e1, e2] = co_await make_parallel_group(socket.async_wait(type, asio::deferred),
                                                        deadline.async_wait(asio::deferred))
                               .async_wait(wait_for_one(), asio::use_awaitable);
    co_return order[0] != 1;
}

}  // namespace concertd::adapters
