#!/usr/bin/env bash
# Benchmarks (not tests): whole-process timings against plain shell pipelines, and peak memory.
#   bash bench/run.sh             PostgreSQL: backups and restores at --jobs 1/2/4 (BENCH_GB, BENCH_RUNS, BENCH_JOBS)
#   bash bench/run.sh all         PostgreSQL, then MariaDB (mariadb-dump and mydumper/myloader), in one run
#   bash bench/run.sh all --10gb  the same on 10 GB (run it once, the machine is shared)
#   bash bench/run.sh mariadb     MariaDB
#   bash bench/run.sh pitr        WAL archiving throughput
# BENCH_ONLY=backup|restore runs one half; BENCH_MARIADB_RESTORES=0 skips MariaDB's restores.
# Before the database benchmarks it checks the free space in TMPDIR and refuses when it is short.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-postgres}"
[ "${2:-}" = --10gb ] && export BENCH_GB=10

# The disk a run needs at most, as a multiple of the database's size, all under TMPDIR (an estimate,
# in units of the database's size on disk: the runs print "disk in use now" to check it against).
# PostgreSQL: the database 1 + a restore target 1 + the WAL a restore writes (up to max_wal_size,
# 8 GB) + the uncompressed local file and directory (about 0.8 each) + the compressed ones (about
# 0.3 each) + the zstd file and three stores (about 0.26 each) + a parallel restore's scratch copy
# (0.8): about 5.7. MariaDB: the database 1 + a restore target 1 + one restore's binary log (about
# 1; purged between variants) + the mydumper directory (0.8) + the zstd file and stores (0.26 each)
# + a parallel restore's scratch copy (0.8): about 5.4, plus 0.6 GiB of InnoDB files.
DISK_FACTOR=6
check_disk() {
  local dir="${TMPDIR:-/tmp}" gb="${BENCH_GB:-1}" need free
  need=$(awk -v g="$gb" -v f="$DISK_FACTOR" 'BEGIN { printf "%.1f", g * f + 1 }')
  free=$(df -Pk "$dir" | awk 'NR == 2 { printf "%.1f", $4 / 1048576 }')
  echo "bench: ${gb} GB of data needs about ${need} GiB free in $dir (TMPDIR); it has ${free} GiB" >&2
  if awk -v n="$need" -v f="$free" 'BEGIN { exit !(f < n) }'; then
    echo "bench: not enough disk for BENCH_GB=$gb in $dir: free $(awk -v n="$need" -v f="$free" \
      'BEGIN { printf "%.1f", n - f }') GiB more, set TMPDIR to a larger disk, or use a smaller BENCH_GB" >&2
    exit 2
  fi
}

case "$what" in
  postgres)
    check_disk
    exec npx tsx bench/postgres.ts
    ;;
  all)
    check_disk
    npx tsx bench/postgres.ts
    bash bench/mariadb.sh
    ;;
  mariadb)
    check_disk
    exec bash bench/mariadb.sh
    ;;
  *) exec bash "bench/$what.sh" ;;
esac
