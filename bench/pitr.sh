#!/usr/bin/env bash
# WAL archiving throughput of `dbbackup wal-push` (PostgreSQL's archive_command) and
# `dbbackup wal-fetch` (restore_command). A script to run, not a test: it prints figures and
# asserts nothing.
#
#  1. A throwaway PostgreSQL server runs pgbench and copies its WAL segments aside (cp as
#     archive_command), so the next steps push real WAL, not synthetic bytes.
#  2. Those segments are pushed one at a time, as the archiver does (one process per segment,
#     in order), to file:// storage with each pipeline: segments/s and MB/s of WAL.
#  3. The same segments are fetched back one at a time, as recovery does.
#  4. A server under pgbench load archives through wal-push itself: how much WAL it wrote, how
#     much was archived, and how far the archiver fell behind (pg_stat_archiver).
#
# Environment: BENCH_SEGMENTS (default 48), BENCH_SECONDS (load phase, default 30),
# BENCH_SCALE (pgbench scale, default 20). Needs PostgreSQL 15 in /usr/lib/postgresql/15/bin;
# under root the server runs as the postgres user.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=/usr/lib/postgresql/15/bin
dbbackup="$(command -v node) $here/dist/runner/dbbackup.js"
segments=${BENCH_SEGMENTS:-48}
seconds=${BENCH_SECONDS:-30}
scale=${BENCH_SCALE:-20}
[ -f "$here/dist/runner/dbbackup.js" ] || (cd "$here" && node scripts/build.mjs --bundle-only)

work=$(mktemp -d /tmp/dbbackup-bench-pitr-XXXX)
chmod 755 "$work"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres: "$work"
port=$((20000 + RANDOM % 20000))
cleanup() { as_pg "$bin/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

start_server() { # archive_command
  as_pg "$bin/pg_ctl" -D "$work/data" -l "$work/server.log" -w -o "-c port=$port -c listen_addresses='' -c unix_socket_directories=$work -c wal_level=replica -c archive_mode=on -c max_wal_size=4GB -c synchronous_commit=off -c archive_command='$1'" start >/dev/null
}
stop_server() { as_pg "$bin/pg_ctl" -D "$work/data" -m fast -w stop >/dev/null; }
psql_() { as_pg "$bin/psql" -X -q -A -t -h "$work" -p "$port" -U postgres -d postgres -c "$1"; }

as_pg "$bin/initdb" -D "$work/data" -U postgres --auth=trust --no-sync >/dev/null
as_pg mkdir -p "$work/raw"

echo "== 1. real WAL: pgbench (scale $scale) with archive_command = cp"
start_server "cp %p $work/raw/%f"
as_pg "$bin/pgbench" -h "$work" -p "$port" -U postgres -i -q -s "$scale" postgres >/dev/null 2>&1
while [ "$(ls "$work/raw" | grep -cE '^[0-9A-F]{24}$')" -lt "$segments" ]; do
  as_pg "$bin/pgbench" -h "$work" -p "$port" -U postgres -c 2 -T 5 postgres >/dev/null 2>&1
done
psql_ "SELECT pg_switch_wal()" >/dev/null
stop_server
mapfile -t files < <(ls "$work/raw" | grep -E '^[0-9A-F]{24}$' | sort | head -n "$segments")
mib=$((${#files[@]} * 16))
echo "   ${#files[@]} segments ($mib MiB of WAL)"

age-keygen -o "$work/key" 2>/dev/null
recipient=$(age-keygen -y "$work/key")

rate() { # label seconds
  awk -v l="$1" -v t="$2" -v n="${#files[@]}" -v m="$mib" 'BEGIN { printf "   %-36s %6.2f s  %6.1f segments/s  %7.1f MB/s of WAL\n", l, t, n / t, m * 1.048576 / t }'
}

echo "== 2. wal-push, one process per segment in order (as the archiver runs it)"
for cfg in "none none" "zstd none" "zstd age" "lz4 none"; do
  set -- $cfg
  enc=none; [ "$2" = age ] && enc="age:$recipient"
  store="$work/store-$1-$2"
  start=$(date +%s.%N)
  for f in "${files[@]}"; do $dbbackup wal-push "$work/raw/$f" --to "file://$store" --compression "$1" --encrypt "$enc" 2>/dev/null; done
  end=$(date +%s.%N)
  rate "compression $1, encryption $2" "$(awk -v s="$start" -v e="$end" 'BEGIN { print e - s }')"
  stored=$(du -sm "$store/wal" | cut -f1)
  echo "      stored: $stored MiB"
done
start=$(date +%s.%N)
for f in "${files[@]}"; do $dbbackup wal-push "$work/raw/$f" --to "file://$work/store-zstd-none" 2>/dev/null; done
end=$(date +%s.%N)
rate "again (already archived: hash + list)" "$(awk -v s="$start" -v e="$end" 'BEGIN { print e - s }')"
start=$(date +%s.%N)
for f in "${files[@]}"; do node -e 0; done
end=$(date +%s.%N)
rate "node -e 0 (process start-up alone)" "$(awk -v s="$start" -v e="$end" 'BEGIN { print e - s }')"

echo "== 3. wal-fetch, one process per segment (as recovery runs it)"
mkdir -p "$work/fetched"
for cfg in "zstd none" "zstd age"; do
  set -- $cfg
  idarg=(); [ "$2" = age ] && idarg=(--identity "$work/key")
  start=$(date +%s.%N)
  for f in "${files[@]}"; do $dbbackup wal-fetch "$f" "$work/fetched/$f" --from "file://$work/store-$1-$2" "${idarg[@]}" 2>/dev/null; rm -f "$work/fetched/$f"; done
  end=$(date +%s.%N)
  rate "compression $1, encryption $2" "$(awk -v s="$start" -v e="$end" 'BEGIN { print e - s }')"
done

echo "== 4. a server under pgbench load (-c 4, $seconds s) archiving through wal-push (zstd)"
as_pg mkdir -p "$work/live"
start_server "$dbbackup wal-push %p --to file://$work/live"
psql_ "SELECT pg_stat_reset_shared('archiver')" >/dev/null
lsn0=$(psql_ "SELECT pg_current_wal_lsn()")
as_pg "$bin/pgbench" -h "$work" -p "$port" -U postgres -c 4 -T "$seconds" postgres 2>/dev/null | grep -E '^tps' | sed 's/^/   /'
written=$(psql_ "SELECT round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$lsn0') / 1048576)")
current=$(psql_ "SELECT pg_walfile_name(pg_current_wal_lsn())")
last=$(psql_ "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
behind=$(( 16#${current:16:8} + 256 * 16#${current:8:8} - (16#${last:16:8} + 256 * 16#${last:8:8}) ))
echo "   WAL written: $written MiB; archived during the run: $(psql_ "SELECT archived_count FROM pg_stat_archiver") files; failures: $(psql_ "SELECT failed_count FROM pg_stat_archiver"); behind at the end: $behind segment(s)"
start=$(date +%s.%N)
while [ "$(psql_ "SELECT coalesce(last_archived_wal, '') >= '$current' FROM pg_stat_archiver")" != t ]; do psql_ "SELECT pg_switch_wal()" >/dev/null; sleep 0.2; done
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" 'BEGIN { printf "   caught up %.1f s after the load stopped\n", e - s }'
stop_server
