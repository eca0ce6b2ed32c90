#!/usr/bin/env bash
# The MariaDB benchmark (issue 5): `dbbackup backup --engine mysql` to file:// against plain
# shell pipelines, on a generated database of realistic, not-too-compressible data.
#
#   bash bench/mariadb.sh                    (or: bash bench/run.sh mariadb)
#   BENCH_GB=0.5 BENCH_RUNS=5 bash bench/mariadb.sh
#
# Starts a throwaway mariadbd (binary log on, as in production) in a temporary directory,
# generates BENCH_GB of rows (timestamps, numbers, JSON, text), then runs each variant
# BENCH_RUNS times and prints the median wall time, the peak RSS of the largest single process
# (GNU time %M) and of the whole process tree (sampled from /proc every 100 ms), and the ratios
# to `mariadb-dump | zstd -T0`. Nothing here is asserted; this is not a test.
set -euo pipefail
cd "$(dirname "$0")/.."

GB="${BENCH_GB:-1}"
RUNS="${BENCH_RUNS:-3}"
ROWS_PER_GB=3750000
ROWS=$(awk -v g="$GB" -v r="$ROWS_PER_GB" 'BEGIN { printf "%d", g * r }')

for tool in mariadbd mariadb-install-db mariadb mariadb-dump mydumper myloader zstd gzip /usr/bin/time; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "bench: $tool is needed" >&2; exit 2; }
done
[ -f dist/runner/dbbackup.js ] || node scripts/build.mjs --bundle-only >/dev/null
# BENCH_DBBACKUP: a copy of the bundle, so a build during a long run does not change what is measured.
DBBACKUP="${BENCH_DBBACKUP:-dist/runner/dbbackup.js}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/dbbackup-bench-my-XXXXXX")"
DATA="$WORK/data"
SOCK="$WORK/mysqld.sock"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
PASSWORD="$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
SERVER_PID=""
USER_ARGS=()
if [ "$(id -u)" = 0 ]; then
  chown mysql:mysql "$WORK"
  USER_ARGS=(--user=mysql)
fi

cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

sql() { mariadb --no-defaults --socket="$SOCK" --user=root --batch --skip-column-names "$@"; }

mariadb-install-db --no-defaults --datadir="$DATA" "${USER_ARGS[@]}" --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve >/dev/null 2>&1
MARIADBD="$(command -v mariadbd || echo /usr/sbin/mariadbd)"
"$MARIADBD" --no-defaults --datadir="$DATA" --socket="$SOCK" --port="$PORT" --bind-address=127.0.0.1 --skip-name-resolve \
  --pid-file="$WORK/mysqld.pid" --server-id=1 --log-bin="$DATA/binlog" --binlog-format=ROW "${USER_ARGS[@]}" \
  --innodb-buffer-pool-size=1G --innodb-log-file-size=512M --innodb-flush-log-at-trx-commit=0 --sync-binlog=0 \
  --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci 2>"$WORK/mysqld.log" &
SERVER_PID=$!
for _ in $(seq 300); do sql -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.1; done
sql -e "ALTER USER 'root'@'localhost' IDENTIFIED BY '$PASSWORD'; ALTER USER IF EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '$PASSWORD'; FLUSH PRIVILEGES;"
export MYSQL_PWD="$PASSWORD"

echo "generating ~$GB GB ($ROWS rows) of data…" >&2
started=$(date +%s)
sql -e "CREATE DATABASE bench; CREATE TABLE bench.events (
  id BIGINT PRIMARY KEY, at DATETIME NOT NULL, account INT NOT NULL, kind VARCHAR(20) NOT NULL,
  amount DECIMAL(12,2), payload JSON, note TEXT, KEY by_account (account, at)) ENGINE=InnoDB"
CHUNK=500000
for ((from = 1; from <= ROWS; from += CHUNK)); do
  to=$((from + CHUNK - 1)); [ "$to" -gt "$ROWS" ] && to=$ROWS
  sql bench -e "SET SESSION sql_log_bin = 0; INSERT INTO events SELECT seq,
    TIMESTAMP'2025-01-01 00:00:00' + INTERVAL (seq * 7919 MOD 31536000) SECOND,
    (seq * 2654435761) MOD 100000,
    ELT(1 + seq MOD 7, 'order.created', 'order.paid', 'order.shipped', 'refund', 'login', 'logout', 'cart.updated'),
    ((seq * 48271) MOD 1000000) / 100,
    JSON_OBJECT('ip', CONCAT_WS('.', seq * 17 MOD 256, seq * 31 MOD 256, seq * 7 MOD 256, seq MOD 256),
                'agent', ELT(1 + seq MOD 4, 'Mozilla/5.0 (X11; Linux x86_64)', 'Mozilla/5.0 (Macintosh)', 'curl/8.5.0', 'okhttp/4.12'),
                'session', MD5(seq), 'items', seq MOD 9),
    CONCAT('customer ', seq MOD 50000, ' ', SUBSTR(CONCAT(MD5(seq * 3), MD5(seq * 5)), 1, 20 + seq MOD 40))
    FROM seq_${from}_to_${to}"
done
sql bench -e 'ANALYZE TABLE events' >/dev/null
SIZE_MB=$(sql -e "SELECT ROUND(SUM(data_length + index_length) / 1048576) FROM information_schema.TABLES WHERE table_schema = 'bench'")
echo "generated in $(( $(date +%s) - started )) s: ${SIZE_MB} MiB on disk" >&2

CONN=(--no-defaults --protocol=TCP --host=127.0.0.1 --port="$PORT" --user=root)
DUMP="mariadb-dump ${CONN[*]} --single-transaction --routines --triggers --events --hex-blob --default-character-set=utf8mb4 --no-tablespaces --master-data=2 --gtid bench"
OUT="$WORK/out"
mkdir -p "$OUT"

# The summed RSS (KiB) of a process and all its descendants, from one `ps` snapshot.
tree_rss() {
  ps -eo pid=,ppid=,rss= | awk -v root="$1" '
    { parent[$1] = $2; rss[$1] = $3 }
    END {
      for (p in parent) {
        q = p; depth = 0
        while (q != "" && q != 0 && q != root && depth < 64) { q = parent[q]; depth++ }
        if (q == root) total += rss[p]
      }
      print total + 0
    }'
}

# CPU seconds (user + system) the server has used so far (all its threads), from /proc.
server_cpu() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$SERVER_PID/stat"; }

# measure LABEL COMMAND: prints "seconds top_peak_kib tree_peak_kib cpu_seconds" (cpu: the command's
# tree and the server; on a machine shared with other work it varies far less than wall time)
measure() {
  local cmd="$2" stats="$WORK/time.txt" peak=0 now before
  before=$(server_cpu)
  /usr/bin/time -f '%e %M %U %S' -o "$stats" bash -o pipefail -c "$cmd" >/dev/null 2>"$WORK/stderr.txt" &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    now=$(tree_rss "$pid")
    [ "$now" -gt "$peak" ] && peak=$now
    sleep 0.1
  done
  if ! wait "$pid"; then
    echo "bench: '$1' failed:" >&2
    tail -5 "$WORK/stderr.txt" >&2
    exit 1
  fi
  read -r seconds top user sys <"$stats"
  echo "$seconds $top $peak $(awk -v u="$user" -v s="$sys" -v b="$before" -v a="$(server_cpu)" 'BEGIN { printf "%.2f", u + s + a - b }')"
}

# The client's password for mydumper/myloader (a 0600 file, never argv).
DEFAULTS="$WORK/client.cnf"
printf '[client]\npassword=%s\n' "$PASSWORD" > "$DEFAULTS"
chmod 600 "$DEFAULTS"
MYCONN="--defaults-file=$DEFAULTS --host=127.0.0.1 --port=$PORT --user=root"
# mydumper splits a table into row chunks (--rows), so even one large table is dumped in parallel.
MYDUMPER="mydumper $MYCONN --database=bench --trx-consistency-only --rows=250000 --outputdir"
LABELS=(
  "mariadb-dump > /dev/null (producer alone)"
  "mariadb-dump | zstd -T0 > file (b)"
  "mariadb-dump | gzip > file (a)"
  "dbbackup backup (zstd) to file://"
  "dbbackup backup --row-counts estimate"
)
COMMANDS=(
  "$DUMP > /dev/null"
  "$DUMP | zstd -q -T0 > $OUT/b.sql.zst"
  "$DUMP | gzip > $OUT/a.sql.gz"
  "DBBACKUP_SOURCE_PASSWORD=\$MYSQL_PWD DBBACKUP_LOG_FORMAT=json node $DBBACKUP backup --engine mysql --source mysql://root@127.0.0.1:$PORT/bench --to file://$OUT/store"
  "DBBACKUP_SOURCE_PASSWORD=\$MYSQL_PWD DBBACKUP_LOG_FORMAT=json node $DBBACKUP backup --engine mysql --source mysql://root@127.0.0.1:$PORT/bench --to file://$OUT/store --row-counts estimate"
)
for n in ${BENCH_JOBS:-2 4}; do
  LABELS+=(
    "mydumper -t $n to a directory (producer alone)"
    "mydumper -t $n && tar -c | zstd -T0 > file"
    "dbbackup backup --jobs $n (mydumper through the spool)"
  )
  COMMANDS+=(
    "rm -rf $OUT/my$n && $MYDUMPER $OUT/my$n --threads=$n"
    "rm -rf $OUT/myz$n && $MYDUMPER $OUT/myz$n --threads=$n && tar -cf - -C $OUT myz$n | zstd -q -T0 > $OUT/my$n.tar.zst && rm -rf $OUT/myz$n"
    "DBBACKUP_SOURCE_PASSWORD=\$MYSQL_PWD DBBACKUP_LOG_FORMAT=json node $DBBACKUP backup --engine mysql --source mysql://root@127.0.0.1:$PORT/bench --to file://$OUT/store --jobs $n"
  )
done
# Restores into a new database: the single stream into the client, and myloader -t N.
LABELS+=("zstd -d | mariadb (restore of (b))")
COMMANDS+=("mariadb ${CONN[*]} -e 'DROP DATABASE IF EXISTS r; CREATE DATABASE r' && zstd -q -d -c $OUT/b.sql.zst | mariadb ${CONN[*]} r")
for n in ${BENCH_JOBS:-2 4}; do
  LABELS+=("myloader -t $n (restore of the mydumper directory)")
  COMMANDS+=("mariadb ${CONN[*]} -e 'DROP DATABASE IF EXISTS r' && myloader $MYCONN --directory=$OUT/my$n --database=r --threads=$n")
done
declare -A RESULTS
for ((run = 1; run <= RUNS; run++)); do
  for i in "${!LABELS[@]}"; do
    m=$(measure "${LABELS[$i]}" "${COMMANDS[$i]}")
    RESULTS[$i]+="$m"$'\n'
    rm -rf "$OUT/store"
    echo "run $run: ${LABELS[$i]}: $(echo "$m" | cut -d' ' -f1) s" >&2
  done
done
STORED=$(du -sk "$OUT/b.sql.zst" | cut -f1)

# Median wall time per variant; the peaks are the maxima over the runs.
declare -A WALL TOP TREE CPU
for i in "${!LABELS[@]}"; do
  WALL[$i]=$(printf '%s' "${RESULTS[$i]}" | awk 'NF { print $1 }' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
  TOP[$i]=$(printf '%s' "${RESULTS[$i]}" | awk 'NF && $2 > m { m = $2 } END { printf "%d", m / 1024 }')
  TREE[$i]=$(printf '%s' "${RESULTS[$i]}" | awk 'NF && $3 > m { m = $3 } END { printf "%d", m / 1024 }')
  CPU[$i]=$(printf '%s' "${RESULTS[$i]}" | awk 'NF { print $4 }' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
done

echo
echo "MariaDB $(sql -e 'SELECT VERSION()'), database ${SIZE_MB} MiB on disk (zstd dump $((STORED / 1024)) MiB), $(nproc) cores, median of $RUNS runs; ratio = time / time of (b)"
echo
echo '| variant | wall | vs (b) | vs (a) | CPU (client + server) | CPU vs (b) | peak RSS (largest process) | peak RSS (process tree) |'
echo '|---|---|---|---|---|---|---|---|'
for i in "${!LABELS[@]}"; do
  awk -v l="${LABELS[$i]}" -v w="${WALL[$i]}" -v b="${WALL[1]}" -v a="${WALL[2]}" -v c="${CPU[$i]}" -v cb="${CPU[1]}" -v t="${TOP[$i]}" -v r="${TREE[$i]}" \
    'BEGIN { printf "| %-42s | %7.2f s | %5.2fx | %5.2fx | %6.2f s | %5.2fx | %5d MiB | %5d MiB |\n", l, w, w / b, w / a, c, c / cb, t, r }'
done
for n in ${BENCH_JOBS:-2 4}; do
  printf 'stored: mydumper -t %s | zstd: %s MiB\n' "$n" "$(( $(du -sk "$OUT/my$n.tar.zst" | cut -f1) / 1024 ))"
done
