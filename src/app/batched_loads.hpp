// Database loads of several keys at once after cache misses, batched per I/O thread (a dates
// list misses the usage of the dates that changed; app/shared_loads.hpp does the same for one key).
//
// At most one load runs on a thread. Misses that arrive while it runs join the *next* load, which
// asks for all their keys in one go once the running one has ended, and is run by the first of
// them. So a load a reader gets always started after the reader asked, and sees every write
// answered before (docs/caching.md's rule holds as for a load of its own), and however many
// readers miss at once, a thread has at most one load in flight and one queued: the database
// work does not grow with the readers while it is slow. The runner stores what it found (the
// cache write) after handing the turn on: the next load does not wait for it.
//
// Each key comes with the cache generation its reader looked up before asking; a key asked twice
// keeps the newer one (generations only grow, and both were seen before the load began).
//
// State is per OS thread (one thread per io_context, this codebase's rule): no lock.
#pragma once

#include <boost/asio/this_coro.hpp>
#include <cstdint>
#include <exception>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "app/load_rounds.hpp"
#include "app/ports/storage.hpp"

namespace concertd::app {

template <class Key, class Value>
class BatchedLoads {
public:
    using Generations = std::unordered_map<Key, std::uint64_t>;  // key → generation
    using Found = std::unordered_map<Key, Value>;                // a key not found is absent

    // `load(const Generations&)` returns Task<Found>. Runs it for `asked`, or joins the next
    // load of this thread; `*shared` tells which. A load's exception reaches all its readers.
    // The reader that ran the load then awaits `store(keys, found)` (a Task<void>) with the keys
    // of every reader of its round.
    template <class Load, class Store>
    Task<std::shared_ptr<const Found>> get(const Generations& asked, Load load, Store store,
                                           bool& shared) {
        auto& state = thread_state();
        shared = false;
        const auto executor = co_await boost::asio::this_coro::executor;
        if (!state.running) {
            state.running = true;
            auto round = std::make_shared<Round>(executor);
            round->add(asked);
            co_return co_await run_and_store(*round, load, store);
        }
        const bool runs_next = !state.next;
        if (runs_next) state.next = std::make_shared<Round>(executor);
        auto round = state.next;
        round->add(asked);
        if (runs_next) {
            co_await RoundSignals::wait(round->go);  // the running load has ended: this one runs now
            co_return co_await run_and_store(*round, load, store);
        }
        shared = true;
        co_await RoundSignals::wait(round->done);
        if (round->error) std::rethrow_exception(round->error);
        co_return round->found;
    }

private:
    struct Round : RoundSignals {
        using RoundSignals::RoundSignals;
        void add(const Generations& asked) {
            for (const auto& [key, generation] : asked) {
                auto [it, added] = keys.emplace(key, generation);
                if (!added && generation > it->second) it->second = generation;
            }
        }
        Generations keys;
        std::shared_ptr<const Found> found;
        std::exception_ptr error;
    };
    struct State {
        bool running = false;         // a load runs on this thread
        std::shared_ptr<Round> next;  // the readers waiting for the load after it
    };

    // However the running load ends (also with its frame destroyed), the next round starts or
    // the thread is free again.
    struct HandOver {
        BatchedLoads& loads;
        ~HandOver() {
            auto& state = loads.thread_state();
            if (auto next = std::move(state.next)) {
                state.next = nullptr;
                next->go.cancel();
            } else {
                state.running = false;
            }
        }
    };

    template <class Load>
    Task<std::shared_ptr<const Found>> run(Round& round, Load& load) {
        HandOver hand_over{*this};
        try {
            round.found = std::make_shared<const Found>(co_await load(round.keys));
        } catch (...) {
            round.error = std::current_exception();
        }
        round.done.cancel();
        if (round.error) std::rethrow_exception(round.error);
        co_return round.found;
    }

    template <class Load, class Store>
    Task<std::shared_ptr<const Found>> run_and_store(Round& round, Load& load, Store& store) {
        auto found = co_await run(round, load);  // the turn is handed on
        co_await store(round.keys, *found);
        co_return found;
    }

    State& thread_state() { return state_.get(); }

    PerThread<State> state_;
};

}  // namespace concertd::app
