#!/usr/bin/env bash
# Benchmarks (not tests): whole-process timings against plain shell pipelines, and peak memory.
#   bash bench/run.sh             PostgreSQL: backups and restores at --jobs 1/2/4 (BENCH_GB, BENCH_RUNS, BENCH_JOBS)
#   bash bench/run.sh all         PostgreSQL, then MariaDB (mariadb-dump and mydumper/myloader), in one run
#   bash bench/run.sh all --10gb  the same on 10 GB (run it once, the machine is shared)
#   bash bench/run.sh all --sizes 1,10   both engines at each size in turn, then one summary table of every
#                                 dbbackup ratio (sizes above 1 GB: BENCH_RUNS_LARGE runs each, default 1)
#   bash bench/run.sh mariadb     MariaDB
#   bash bench/run.sh pitr        WAL archiving throughput
# BENCH_ONLY=backup|restore runs one half; BENCH_MARIADB_RESTORES=0 skips MariaDB's restores.
# Before the database benchmarks it checks the free space in TMPDIR and refuses when it is short.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-postgres}"
[ "${2:-}" = --10gb ] && export BENCH_GB=10
SIZES=""
if [ "${2:-}" = --sizes ]; then
  SIZES="${3:-}"
  [[ "$SIZES" =~ ^[0-9]+(\.[0-9]+)?(,[0-9]+(\.[0-9]+)?)*$ ]] || {
    echo "bench: --sizes ${SIZES}: give sizes in GB separated by commas, e.g. --sizes 1,10" >&2
    exit 2
  }
  [ "$what" = all ] || { echo "bench: --sizes goes with 'all' (bash bench/run.sh all --sizes 1,10)" >&2; exit 2; }
fi

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

# The summary of a run: every dbbackup row of every table printed on stdout, with the table it came
# from (engine, what, size), its ratio columns and the peak RSS of its own process, in one Markdown table.
summary() {
  awk -F' [|] ' '
    /^(Backups|Restores|Fixed cost)/ { title = $0; sub(/ \(.*/, "", title); next }
    /^(PostgreSQL|MariaDB) [0-9]/ { engine = $1; sub(/ .*/, "", engine); next }
    /^[|] dbbackup / {
      if (!printed) {
        print "| engine | table | variant | wall | CPU | ratio (wall, CPU) | second ratio | peak RSS, dbbackup |"
        print "|---|---|---|---|---|---|---|---|"
        printed = 1
      }
      name = $1; sub(/^[|] /, "", name)
      print "| " engine " | " title " | " name " | " $2 " | " $3 " | " $4 " | " $5 " | " $(NF - 1) " |"
    }' "$1"
}

# all --sizes A,B: each size in turn (PostgreSQL, then MariaDB), every table to stdout as it is made,
# then the summary. Sizes above 1 GB run BENCH_RUNS_LARGE times each (default 1: 10 GB at 3 runs takes
# the best part of a day on 2 cores).
all_sizes() {
  local out gb
  out="$(mktemp "${TMPDIR:-/tmp}/dbbackup-bench-all-XXXXXX")"
  for gb in $(echo "$SIZES" | tr ',' ' '); do
    local runs="${BENCH_RUNS:-3}"
    awk -v g="$gb" 'BEGIN { exit !(g > 1) }' && runs="${BENCH_RUNS_LARGE:-1}"
    echo "bench: ${gb} GB, ${runs} run(s) of each variant" >&2
    BENCH_GB="$gb" check_disk
    BENCH_GB="$gb" BENCH_RUNS="$runs" npx tsx bench/postgres.ts | tee -a "$out"
    BENCH_GB="$gb" BENCH_RUNS="$runs" bash bench/mariadb.sh | tee -a "$out"
  done
  echo
  echo "Summary: every dbbackup row above, sizes ${SIZES} GB (each ratio over the variant named in brackets)"
  echo
  summary "$out"
  rm -f "$out"
}

case "$what" in
  postgres)
    check_disk
    exec npx tsx bench/postgres.ts
    ;;
  all)
    if [ -n "$SIZES" ]; then
      all_sizes
      exit 0
    fi
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
