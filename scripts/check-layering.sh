#!/usr/bin/env bash
# Dependencies point inward: domain includes nothing of app or adapters; app nothing of adapters.
set -u
root=${1:-.}
bad=0
if grep -rnE '#include "(app|adapters|wiring)/' "$root/src/domain"; then bad=1; fi
if grep -rnE '#include "(adapters|wiring)/' "$root/src/app"; then bad=1; fi
if grep -rnE '#include <boost/(asio|beast)' "$root/src/domain"; then bad=1; fi
exit $bad
