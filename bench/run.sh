#!/usr/bin/env bash
# Benchmarks (not tests): whole-process timings against plain shell pipelines, and peak memory.
#   bash bench/run.sh             PostgreSQL: backups and restores at --jobs 1/2/4 (BENCH_GB, BENCH_RUNS, BENCH_JOBS)
#   bash bench/run.sh all         PostgreSQL, then MariaDB (mariadb-dump and mydumper/myloader), in one run
#   bash bench/run.sh all --10gb  the same on 10 GB (disk: about 4x that; run it once, the machine is shared)
#   bash bench/run.sh mariadb     MariaDB
#   bash bench/run.sh pitr        WAL archiving throughput
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-postgres}" in
  postgres) exec npx tsx bench/postgres.ts "${@:2}" ;;
  all)
    npx tsx bench/postgres.ts "${@:2}"
    if [ "${2:-}" = --10gb ]; then BENCH_GB=10 bash bench/mariadb.sh; else bash bench/mariadb.sh; fi
    ;;
  *) exec bash "bench/$1.sh" ;;
esac
