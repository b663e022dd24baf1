// Marks a database connection in use for one call (libpq, libmariadb). If the call ends any
// other way than finish() (an unexpected exception, or the coroutine destroyed mid-call), the
// state on the wire is unknown: the connection is marked broken and the pool drops it. Shared by
// the storage adapters; `Impl` has `bool in_flight, broken` and `release_socket()`.
#pragma once

#include <cassert>

namespace concertd::adapters {

template <class Impl>
class CallInFlight {
public:
    explicit CallInFlight(Impl& impl) : impl_(impl) {
        assert(!impl_.in_flight && "a connection serves one coroutine at a time");
        impl_.in_flight = true;
    }
    ~CallInFlight() {
        impl_.release_socket();
        if (!finished_) impl_.broken = true;
        impl_.in_flight = false;
    }
    CallInFlight(const CallInFlight&) = delete;
    CallInFlight& operator=(const CallInFlight&) = delete;
    void finish() { finished_ = true; }

private:
    Impl& impl_;
    bool finished_ = false;
};

}  // namespace concertd::adapters
