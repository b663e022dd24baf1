// One throwaway MariaDB (scripts/mariadb-start.sh) for a unit test binary, and a fixture that
// runs coroutines on an io_context. A test skips, with the reason, when the server cannot start.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "adapters/mysql/detail/mysql_connection.hpp"
#include "adapters/mysql/mysql_migrations.hpp"

namespace concertd::mysql::testing {

// Runs `command`; returns its exit status and standard output (without the last newline).
inline std::pair<int, std::string> run_command(const std::string& command) {
    std::string output;
    FILE* pipe = ::popen(command.c_str(), "r");
    if (!pipe) return {-1, ""};
    std::array<char, 256> buffer{};
    while (std::fgets(buffer.data(), buffer.size(), pipe)) output += buffer.data();
    int status = ::pclose(pipe);
    while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) output.pop_back();
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

class MariaDbEnvironment : public ::testing::Environment {
public:
    void SetUp() override {
        std::string pattern = (std::filesystem::temp_directory_path() / "concertd-mdb-XXXXXX");
        if (!::mkdtemp(pattern.data())) {
            reason_ = "mkdtemp failed";
            return;
        }
        dir_ = pattern;
        auto [status, output] = run_command(script("mariadb-start.sh") + " " + dir_);
        auto url_at = output.rfind("mysql://");
        if (status != 0 || url_at == std::string::npos) {
            reason_ = "scripts/mariadb-start.sh failed (exit " + std::to_string(status) + ")";
            return;
        }
        url_ = output.substr(url_at);
        endpoint_ = detail::parse_mysql_url(url_);
    }

    void TearDown() override {
        if (dir_.empty()) return;
        run_command(script("mariadb-stop.sh") + " " + dir_ + " kill");
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }

    // Stops the server as a crash would (SIGKILL), and starts it again on the same port.
    bool kill() { return run_command(script("mariadb-stop.sh") + " " + dir_ + " kill").first == 0; }
    bool start() {
        return run_command(script("mariadb-start.sh") + " " + dir_ + " " +
                           std::to_string(endpoint_.port))
                   .first == 0;
    }

    // A new, empty database `name` (dropped first if it exists) with the schema of
    // migrations/mysql applied; its endpoint.
    detail::MysqlEndpoint fresh_database(const std::string& name) const {
        auto [status, output] = run_command(
            "mariadb --no-defaults -h 127.0.0.1 -P " + std::to_string(endpoint_.port) + " -u " +
            endpoint_.user + " -p" + endpoint_.password + " -e 'DROP DATABASE IF EXISTS `" + name +
            "`; CREATE DATABASE `" + name + "`' 2>&1");
        if (status != 0) throw std::runtime_error("cannot create database " + name + ": " + output);
        detail::MysqlEndpoint endpoint = endpoint_;
        endpoint.database = name;
        apply_migrations(endpoint, kMysqlMigrations);
        return endpoint;
    }

    const std::string& url() const { return url_; }
    const detail::MysqlEndpoint& endpoint() const { return endpoint_; }
    const std::string& reason() const { return reason_; }

private:
    static std::string script(const char* name) {
        return std::string(CONCERTD_SOURCE_DIR) + "/scripts/" + name;
    }

    std::string dir_;
    std::string url_;
    detail::MysqlEndpoint endpoint_;
    std::string reason_;
};

// The binary's one server: defined once per test binary by CONCERTD_MARIADB_ENVIRONMENT.
MariaDbEnvironment& environment();

#define CONCERTD_MARIADB_ENVIRONMENT                                                        \
    namespace concertd::mysql::testing {                                                    \
    MariaDbEnvironment& environment() {                                                     \
        static auto* const instance = dynamic_cast<MariaDbEnvironment*>(                    \
            ::testing::AddGlobalTestEnvironment(new MariaDbEnvironment));                   \
        return *instance;                                                                   \
    }                                                                                       \
    [[maybe_unused]] static MariaDbEnvironment& registered = environment();                 \
    }

class MariaDbTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (environment().url().empty()) {
            GTEST_SKIP() << "MariaDB not available: " << environment().reason();
        }
    }

    // Runs a coroutine made by `make` to completion on io_; returns (or throws) its result.
    template <class Make>
    auto run(Make make) {
        io_.restart();
        auto result = boost::asio::co_spawn(io_, std::move(make), boost::asio::use_future);
        io_.run();
        return result.get();
    }

    boost::asio::io_context io_;
};

}  // namespace concertd::mysql::testing
