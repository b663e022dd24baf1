// What the two ways of sharing database loads between cache misses have in common
// (app/shared_loads.hpp: one key; app/batched_loads.hpp: several): rounds of readers that wait
// for a load's turn and for its end, and state kept per I/O thread.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdint>
#include <unordered_map>

#include "app/ports/storage.hpp"

namespace concertd::app {

// The two moments readers of a round wait for; each is signalled by cancelling its timer.
struct RoundSignals {
    explicit RoundSignals(const boost::asio::any_io_executor& executor) : go(executor), done(executor) {
        go.expires_at(boost::asio::steady_timer::time_point::max());
        done.expires_at(boost::asio::steady_timer::time_point::max());
    }
    boost::asio::steady_timer go;    // the round's runner may load
    boost::asio::steady_timer done;  // the load ended: its value or error is set

    static Task<void> wait(boost::asio::steady_timer& signal) {
        co_await signal.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
};

// One `State` per OS thread for each owner (one thread per io_context, this codebase's rule): no
// lock. Keyed by an id, not the owner's address, which may be reused.
template <class State>
class PerThread {
public:
    State& get() {
        thread_local std::unordered_map<std::uint64_t, State> by_owner;
        return by_owner[id_];
    }

private:
    static std::uint64_t next_id() {
        static std::atomic<std::uint64_t> ids{0};
        return ++ids;
    }

    const std::uint64_t id_ = next_id();
};

}  // namespace concertd::app
