// Precompiled header of the HTTP adapter: Beast, Asio and JSON are slow to parse.
#pragma once
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
