// Database loads after a cache miss, shared by the misses of one key on one I/O thread.
//
// A miss that finds no load of its key running on its thread runs its own. Misses that arrive
// while one runs wait for it to end, then share the *next* load, run by the first of them: a
// load a reader gets always started after the reader asked, so it sees every write answered
// before (docs/caching.md's rule holds as for a load of its own). A hot key (every hold
// invalidates its schedule's seat map) then costs at most one load in flight and one queued
// per thread, however many readers miss at once, instead of one load (and one pool
// connection) per reader. The runner stores its value (the cache write) after handing the turn
// on: the next load does not wait for it.
//
// State is per OS thread (one thread per io_context, this codebase's rule): no lock, and a
// hit never touches it.
#pragma once

#include <boost/asio/this_coro.hpp>
#include <exception>
#include <memory>
#include <optional>
#include <unordered_map>
#include <utility>

#include "app/load_rounds.hpp"
#include "app/ports/storage.hpp"

namespace concertd::app {

template <class Key, class Value>
class SharedLoads {
public:
    // `load()` returns Task<Value>. Runs it, or waits for a load of `key` that starts after
    // this call; `*shared` tells which. A load's exception reaches every reader sharing it.
    // The reader that ran the load then awaits `store(value)` (a Task<void>).
    template <class Load, class Store>
    Task<Value> get(Key key, Load load, Store store, bool& shared) {
        auto& slots = thread_slots();
        auto found = slots.find(key);
        shared = false;
        if (found == slots.end()) {
            slots[key];
            co_return co_await run_and_store(key, load, store, nullptr);
        }
        auto& slot = found->second;
        const bool runs_next = !slot.next;
        if (runs_next) slot.next = std::make_shared<Round>(co_await boost::asio::this_coro::executor);
        auto round = slot.next;
        if (runs_next) {
            co_await RoundSignals::wait(round->go);  // the running load has ended: this round is the running one
            co_return co_await run_and_store(key, load, store, round);
        }
        shared = true;
        co_await RoundSignals::wait(round->done);
        if (round->error) std::rethrow_exception(round->error);
        co_return *round->value;
    }

private:
    struct Round : RoundSignals {
        using RoundSignals::RoundSignals;
        std::optional<Value> value;
        std::exception_ptr error;
    };
    struct Slot {  // exists while a load of the key runs on this thread
        std::shared_ptr<Round> next;  // readers waiting for the load after it
    };
    using Slots = std::unordered_map<Key, Slot>;

    // However the running load ends (also with its frame destroyed), the next round starts or
    // the key is free again.
    struct HandOver {
        SharedLoads& loads;
        Key key;
        ~HandOver() {
            auto& slots = loads.thread_slots();
            auto found = slots.find(key);
            if (found == slots.end()) return;
            if (auto next = std::move(found->second.next)) {
                found->second.next = nullptr;
                next->go.cancel();
            } else {
                slots.erase(found);
            }
        }
    };

    template <class Load>
    Task<Value> run(Key key, Load& load, std::shared_ptr<Round> round) {
        HandOver hand_over{*this, key};
        std::optional<Value> value;
        std::exception_ptr error;
        try {
            value = co_await load();
        } catch (...) {
            error = std::current_exception();
        }
        if (round) {
            round->value = value;
            round->error = error;
            round->done.cancel();
        }
        if (error) std::rethrow_exception(error);
        co_return std::move(*value);
    }

    template <class Load, class Store>
    Task<Value> run_and_store(Key key, Load& load, Store& store, std::shared_ptr<Round> round) {
        auto value = co_await run(key, load, std::move(round));  // the turn is handed on
        co_await store(value);
        co_return value;
    }

    Slots& thread_slots() { return slots_.get(); }

    PerThread<Slots> slots_;
};

}  // namespace concertd::app
