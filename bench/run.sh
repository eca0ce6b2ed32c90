#!/usr/bin/env bash
# Benchmarks (not tests): whole-process timings against plain shell pipelines, and peak memory.
#   bash bench/run.sh             PostgreSQL (BENCH_GB, BENCH_RUNS)
#   bash bench/run.sh mariadb     MariaDB
#   bash bench/run.sh pitr        WAL archiving throughput
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-postgres}" in
  postgres) exec npx tsx bench/postgres.ts ;;
  *) exec bash "bench/$1.sh" ;;
esac
