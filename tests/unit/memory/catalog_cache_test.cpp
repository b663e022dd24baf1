#include "adapters/memory/catalog_cache.hpp"

#include <chrono>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "memory/memory_test_support.hpp"

namespace concertd::memory {
namespace {

// The start of a read that begins at the call (CatalogCache's `since`).
app::ReadStart starting_now() { return std::chrono::steady_clock::now(); }

using testing::Runner;

std::shared_ptr<const domain::SeatMap> seat_map_of(domain::ScheduleId schedule, int seats) {
    auto map = std::make_shared<domain::SeatMap>();
    map->schedule_id = schedule;
    for (int i = 1; i <= seats; ++i) {
        domain::SeatState seat;
        seat.seat_no = i;
        seat.price_won = 10'000;
        map->seats.push_back(seat);
    }
    return map;
}

std::shared_ptr<const app::ScheduleDates> dates_of(int schedules) {
    auto dates = std::make_shared<app::ScheduleDates>();
    for (int i = 1; i <= schedules; ++i) dates->push_back({i, {}, 50});
    return dates;
}

std::shared_ptr<const domain::ScheduleUsage> usage_of(domain::ScheduleId schedule, int sold) {
    return std::make_shared<const domain::ScheduleUsage>(
        domain::ScheduleUsage{schedule, sold, {}});
}

// The usage put of one schedule.
void put_usage(Runner& runner, app::CatalogCache& cache, domain::ScheduleId schedule,
               std::shared_ptr<const domain::ScheduleUsage> usage, std::uint64_t generation) {
    const app::UsagePut puts[] = {{schedule, std::move(usage), generation}};
    runner.run(cache.put_usage(puts));
}

// The usage lookup of one schedule.
app::CacheLookup<domain::ScheduleUsage> usage(Runner& runner, app::CatalogCache& cache,
                                              domain::ScheduleId schedule) {
    const domain::ScheduleId ids[] = {schedule};
    return runner.run(cache.usage(ids, starting_now())).at(0);
}

TEST(MemoryCatalogCache, MissThenHitAtTheSameGeneration) {
    MemoryCatalogCache cache;
    Runner runner;
    const auto miss = runner.run(cache.seat_map(7, starting_now()));
    EXPECT_FALSE(miss.value);
    const auto map = seat_map_of(7, 50);
    runner.run(cache.put_seat_map(7, map, miss.generation));
    const auto hit = runner.run(cache.seat_map(7, starting_now()));
    EXPECT_EQ(hit.value, map);
    EXPECT_EQ(hit.generation, miss.generation);

    const auto dates_miss = runner.run(cache.schedules(3, starting_now()));
    EXPECT_FALSE(dates_miss.value);
    const auto dates = dates_of(2);
    runner.run(cache.put_schedules(3, dates, dates_miss.generation));
    EXPECT_EQ(runner.run(cache.schedules(3, starting_now())).value, dates);

    const domain::ScheduleId both[] = {7, 8};
    const auto usage_misses = runner.run(cache.usage(both, starting_now()));
    ASSERT_EQ(usage_misses.size(), 2u);
    EXPECT_FALSE(usage_misses[0].value);
    const auto used = usage_of(8, 3);
    put_usage(runner, cache, 8, used, usage_misses[1].generation);
    const auto usage_hits = runner.run(cache.usage(both, starting_now()));
    EXPECT_FALSE(usage_hits[0].value);
    EXPECT_EQ(usage_hits[1].value, used);
}

TEST(MemoryCatalogCache, PutAfterInvalidateIsIgnored) {
    MemoryCatalogCache cache;
    Runner runner;
    const auto seen = runner.run(cache.seat_map(7, starting_now()));          // a loader looks...
    const auto seen_usage = usage(runner, cache, 7);
    runner.run(cache.invalidate(7));                           // ...a hold commits...
    runner.run(cache.put_seat_map(7, seat_map_of(7, 1), seen.generation));  // ...stale put
    put_usage(runner, cache, 7, usage_of(7, 0), seen_usage.generation);
    const auto after = runner.run(cache.seat_map(7, starting_now()));
    EXPECT_FALSE(after.value);
    EXPECT_GT(after.generation, seen.generation);
    EXPECT_FALSE(usage(runner, cache, 7).value);

    const auto fresh = seat_map_of(7, 2);
    runner.run(cache.put_seat_map(7, fresh, after.generation));
    EXPECT_EQ(runner.run(cache.seat_map(7, starting_now())).value, fresh);
}

// A hold changes one schedule: its seat map and usage go, the concert's dates and the other
// schedules' entries stay.
TEST(MemoryCatalogCache, InvalidateDropsTheSchedulesEntriesOnly) {
    MemoryCatalogCache cache;
    Runner runner;
    for (domain::ScheduleId schedule : {7, 8}) {
        runner.run(cache.put_seat_map(schedule, seat_map_of(schedule, 5), 0));
        put_usage(runner, cache, schedule, usage_of(schedule, 1), 0);
    }
    runner.run(cache.put_schedules(3, dates_of(2), 0));
    runner.run(cache.invalidate(7));
    EXPECT_FALSE(runner.run(cache.seat_map(7, starting_now())).value);
    EXPECT_FALSE(usage(runner, cache, 7).value);
    EXPECT_TRUE(runner.run(cache.seat_map(8, starting_now())).value);
    EXPECT_TRUE(usage(runner, cache, 8).value);
    EXPECT_TRUE(runner.run(cache.schedules(3, starting_now())).value);
}

TEST(MemoryCatalogCache, StalePutNeverOverwritesANewerValue) {
    MemoryCatalogCache cache;
    Runner runner;
    const auto slow = runner.run(cache.seat_map(7, starting_now()));  // a slow loader looks first
    runner.run(cache.invalidate(7));
    const auto fast = runner.run(cache.seat_map(7, starting_now()));
    const auto newer = seat_map_of(7, 3);
    runner.run(cache.put_seat_map(7, newer, fast.generation));
    runner.run(cache.put_seat_map(7, seat_map_of(7, 1), slow.generation));
    EXPECT_EQ(runner.run(cache.seat_map(7, starting_now())).value, newer);
}

TEST(MemoryCatalogCache, ConcurrentReadsPutsAndInvalidations) {
    MemoryCatalogCache cache;
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
        threads.emplace_back([&, t] {
            Runner runner;
            for (int i = 0; i < 20'000; ++i) {
                const domain::ScheduleId schedule = (i * 7 + t) % 64;
                const auto seen = runner.run(cache.seat_map(schedule, starting_now()));
                if (seen.value) {
                    EXPECT_EQ(seen.value->schedule_id, schedule);
                } else {
                    runner.run(cache.put_seat_map(schedule, seat_map_of(schedule, 2),
                                                  seen.generation));
                }
            }
        });
    }
    threads.emplace_back([&] {
        Runner runner;
        for (int i = 0; !stop.load(); ++i) {
            runner.run(cache.invalidate(i % 64));
        }
    });
    threads[0].join();
    threads[1].join();
    stop = true;
    threads[2].join();
}

TEST(NullCatalogCache, AlwaysMisses) {
    NullCatalogCache cache;
    Runner runner;
    runner.run(cache.put_seat_map(7, seat_map_of(7, 5), 0));
    runner.run(cache.put_schedules(3, dates_of(1), 0));
    put_usage(runner, cache, 7, usage_of(7, 1), 0);
    const auto map = runner.run(cache.seat_map(7, starting_now()));
    EXPECT_FALSE(map.value);
    EXPECT_EQ(map.generation, 0u);
    EXPECT_FALSE(runner.run(cache.schedules(3, starting_now())).value);
    EXPECT_FALSE(usage(runner, cache, 7).value);
    runner.run(cache.invalidate(7));
    EXPECT_FALSE(runner.run(cache.seat_map(7, starting_now())).value);
}

}  // namespace
}  // namespace concertd::memory
