// concertd: reads the configuration, wires the adapters to the use cases, serves until SIGTERM.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <iostream>
#include <functional>
#include <thread>

#include "adapters/http/api_handlers.hpp"
#include "adapters/http/http_metrics.hpp"
#include "adapters/http/ops_handlers.hpp"
#include "adapters/http/router.hpp"
#include "adapters/http/server.hpp"
#include "app/background_jobs.hpp"
#include "wiring/backend.hpp"
#include "wiring/config.hpp"
#include "wiring/demo_data.hpp"
#include "wiring/events.hpp"

namespace {

using namespace concertd;

void print_routes() {
    for (const auto& list : {http::ApiHandlers::routes(), http::OpsHandlers::routes()}) {
        for (const auto& route : list) {
            std::cout << boost::beast::http::to_string(route.method) << ' ' << route.pattern << '\n';
        }
    }
}

int serve(const wiring::Config& config) {
    app::AppStats stats;
    app::SystemClock clock;
    auto backend = wiring::open_backend(config, stats, clock);
    app::SalesLedgerConsumer ledger_consumer(*backend->ledger, stats);
    wiring::Events events(config, {&ledger_consumer}, stats);
    for (auto& dependency : events.dependencies()) backend->dependencies.push_back(dependency);

    app::ServiceSettings settings;
    settings.hold_duration = std::chrono::seconds(config.hold_seconds);
    settings.strategies = config.strategies;
    settings.admin_key = config.admin_key;
    settings.store_checks_queue_token = backend->store_checks_queue_token;
    app::AfterCommit after_commit(*backend->cache, *backend->queue, stats);
    app::Ports ports{*backend->catalog, *backend->reservations, *backend->wallets,
                     *backend->payments, *backend->queue,        *backend->lock,
                     *backend->cache,    after_commit,           clock,
                     stats,              settings};
    app::Services services(ports);

    // Admission, expiry sweep and outbox relay run on their own thread, off the I/O threads.
    // It lives as long as the process: database connections opened on it stay valid.
    // Held in an optional: at shutdown it is destroyed (with any coroutine frame still in it)
    // while the database pool those frames borrowed from still exists.
    std::optional<boost::asio::io_context> background(std::in_place);
    auto background_guard = boost::asio::make_work_guard(*background);
    std::thread background_thread([&background] { background->run(); });
    auto stop_background = [&, stopped = false]() mutable {
        if (stopped) return;
        stopped = true;
        background_guard.reset();
        background->stop();
        background_thread.join();
    };
    struct OnExit {
        std::function<void()> run;
        ~OnExit() { run(); }
    } on_exit{std::ref(stop_background)};

    if (config.demo_data &&
        boost::asio::co_spawn(*background, wiring::seed_demo_data(*backend->catalog, clock.now()),
                              boost::asio::use_future)
            .get()) {
        spdlog::info("seeded demo concerts");
    }

    http::Router router;
    http::ApiHandlers api(services);
    api.add_routes(router);
    http::OpsHandlers ops({nullptr, stats, *backend->queue, *backend->outbox, backend->dependencies});
    ops.add_routes(router);
    http::HttpMetrics http_metrics(http::route_labels(router));
    ops.set_http_metrics(http_metrics);

    http::ServerOptions options;
    options.host = config.listen_host;
    options.port = config.listen_port;
    options.threads = config.threads;
    std::optional<http::HttpServer> server(std::in_place, options, router, http_metrics);
    try {
        server->listen();
    } catch (const std::exception& error) {
        throw std::runtime_error(std::string("CONCERTD_LISTEN: ") + error.what());
    }

    app::JobIntervals intervals;
    intervals.outbox_retention = std::chrono::seconds(config.outbox_retention_seconds);
    app::BackgroundJobs jobs(ports, *backend->outbox, events.bus(), intervals);
    jobs.start(background->get_executor());
    events.start(background->get_executor());

    spdlog::info("concertd serving: database {}, strategies seat={} points={} payment={}",
                 config.database_url,
                 app::to_string(config.strategies.seat_hold),
                 app::to_string(config.strategies.point_charge),
                 app::to_string(config.strategies.payment));
    server->run();  // until SIGINT/SIGTERM, then drains in-flight requests

    // Shut down in dependency order: the loops and their thread; then the io_contexts, whose
    // leftover coroutine frames give their connections back to pools that still exist; then
    // the back end (database pools, Redis client).
    jobs.stop();
    for (int waited_ms = 0; jobs.running() > 0 && waited_ms < 5000; waited_ms += 10) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    events.stop();  // its consumers' effects run on the background thread
    stop_background();
    backend->quiesce();
    server.reset();
    background.reset();
    backend.reset();
    spdlog::info("concertd stopped");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App cli{"concertd: concert seat reservation service"};
    std::optional<std::string> config_file;
    bool list_routes = false;
    cli.add_option("--config", config_file, "KEY=VALUE file of CONCERTD_* settings (the environment wins)");
    cli.add_flag("--list-routes", list_routes, "print the HTTP routes and exit");
    CLI11_PARSE(cli, argc, argv);
    if (list_routes) {
        print_routes();
        return 0;
    }

    spdlog::set_default_logger(spdlog::stderr_color_mt("concertd"));
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);

    wiring::Config config;
    try {
        config = wiring::parse_config(wiring::collect_settings(config_file));
    } catch (const wiring::ConfigError& error) {
        std::cerr << "concertd: configuration error: " << error.what() << '\n';
        return 2;
    }
    try {
        return serve(config);
    } catch (const std::exception& error) {
        std::cerr << "concertd: cannot start: " << error.what() << '\n';
        return 1;
    }
}
