#!/usr/bin/env bash
# The MariaDB benchmark (issues 5 and 18): `dbbackup backup --engine mysql` and `dbbackup restore`
# to and from file:// against plain shell pipelines and the tools alone, at --jobs 1, 2 and 4
# (above 1: mydumper/myloader -t N), on a generated database of realistic, not-too-compressible
# data, and on a tiny database (one small table: the fixed cost of a run, apart from the cost per byte).
#
#   bash bench/run.sh mariadb                (checks the free disk space first)
#   BENCH_GB=0.5 BENCH_RUNS=5                (size of the generated database; repetitions of each variant)
#   BENCH_JOBS=1,2,4                         (the --jobs values measured)
#   BENCH_ONLY=backup|restore                (one half; restores alone first make the backups they need, untimed)
#   BENCH_MARIADB_RESTORES=0                 (no restores: at 10 GB each takes about 10 minutes on 2 cores)
#   BENCH_MARIADB_RESTORES=parallel          (only the --jobs N restores and myloader's: no single stream)
#   BENCH_DBBACKUP=FILE                      (a copy of dist/runner/dbbackup.js to measure)
#
# Starts a throwaway mariadbd (binary log on, as in production) in a temporary directory,
# generates BENCH_GB of rows (timestamps, numbers, JSON, text), then runs each variant
# BENCH_RUNS times and prints the median wall time and CPU seconds (user + system of the
# command's process tree and of mariadbd), their ratios to two baselines, the stored size, and
# the peak RSS of the largest single process (GNU time %M) and of the whole process tree (sampled
# from /proc every 100 ms). Nothing here is asserted; this is not a test.
set -euo pipefail
cd "$(dirname "$0")/.."

GB="${BENCH_GB:-1}"
RUNS="${BENCH_RUNS:-3}"
TINY_RUNS=$((RUNS > 5 ? RUNS : 5)) # the tiny database's runs are short and their spread large
read -r -a JOBS <<<"$(echo "${BENCH_JOBS:-1,2,4}" | tr ',' ' ')"
ONLY="${BENCH_ONLY:-}"
RESTORES="${BENCH_MARIADB_RESTORES:-1}"
ROWS_PER_GB=3750000
ROWS=$(awk -v g="$GB" -v r="$ROWS_PER_GB" 'BEGIN { printf "%d", g * r }')
case "$RESTORES" in
  0 | 1 | parallel) ;;
  *) echo "bench: BENCH_MARIADB_RESTORES=$RESTORES: give 1, 0, or parallel" >&2; exit 2 ;;
esac
case "$ONLY" in
  "" | backup | restore) ;;
  *) echo "bench: BENCH_ONLY=$ONLY: give backup, restore, or leave it unset for both" >&2; exit 2 ;;
esac
if [ "$ONLY" = restore ] && [ "$RESTORES" = 0 ]; then
  echo "bench: BENCH_ONLY=restore with BENCH_MARIADB_RESTORES=0 leaves nothing to measure; drop one" >&2
  exit 2
fi
PARALLEL=()
for n in "${JOBS[@]}"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "bench: BENCH_JOBS=${BENCH_JOBS:-}: give numbers, e.g. 1,2,4" >&2; exit 2; }
  [ "$n" -gt 1 ] && PARALLEL+=("$n")
done
MAXJOBS=$(printf '%s\n' "${JOBS[@]}" | sort -n | tail -1)

for tool in mariadbd mariadb-install-db mariadb mariadb-dump mydumper myloader zstd /usr/bin/time; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "bench: $tool is needed" >&2; exit 2; }
done
[ -f dist/runner/dbbackup.js ] || node scripts/build.mjs --bundle-only >/dev/null
# BENCH_DBBACKUP: a copy of the bundle, so a build during a long run does not change what is measured.
DBBACKUP="${BENCH_DBBACKUP:-dist/runner/dbbackup.js}"
BENCH_STARTED=$(date +%s)

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

mariadb-install-db --no-defaults --datadir="$DATA" "${USER_ARGS[@]}" --auth-root-authentication-method=normal \
  --skip-test-db --skip-name-resolve >/dev/null 2>&1
MARIADBD="$(command -v mariadbd || echo /usr/sbin/mariadbd)"
"$MARIADBD" --no-defaults --datadir="$DATA" --socket="$SOCK" --port="$PORT" --bind-address=127.0.0.1 \
  --skip-name-resolve --pid-file="$WORK/mysqld.pid" --server-id=1 --log-bin="$DATA/binlog" --binlog-format=ROW \
  "${USER_ARGS[@]}" --innodb-buffer-pool-size=1G --innodb-log-file-size=512M --innodb-flush-log-at-trx-commit=0 \
  --sync-binlog=0 --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci 2>"$WORK/mysqld.log" &
SERVER_PID=$!
for _ in $(seq 300); do sql -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.1; done
sql -e "ALTER USER 'root'@'localhost' IDENTIFIED BY '$PASSWORD';
  ALTER USER IF EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '$PASSWORD'; FLUSH PRIVILEGES;"
export MYSQL_PWD="$PASSWORD"

# make_table DATABASE ROWS: the table `events` of generated rows, inserted in chunks without binlog.
make_table() {
  local db="$1" rows="$2" chunk=500000 from to
  sql -e "CREATE DATABASE $db; CREATE TABLE $db.events (
    id BIGINT PRIMARY KEY, at DATETIME NOT NULL, account INT NOT NULL, kind VARCHAR(20) NOT NULL,
    amount DECIMAL(12,2), payload JSON, note TEXT, KEY by_account (account, at)) ENGINE=InnoDB"
  for ((from = 1; from <= rows; from += chunk)); do
    to=$((from + chunk - 1)); [ "$to" -gt "$rows" ] && to=$rows
    sql "$db" -e "SET SESSION sql_log_bin = 0; INSERT INTO events SELECT seq,
      TIMESTAMP'2025-01-01 00:00:00' + INTERVAL (seq * 7919 MOD 31536000) SECOND,
      (seq * 2654435761) MOD 100000,
      ELT(1 + seq MOD 7, 'order.created', 'order.paid', 'order.shipped', 'refund', 'login', 'logout', 'cart.updated'),
      ((seq * 48271) MOD 1000000) / 100,
      JSON_OBJECT('ip', CONCAT_WS('.', seq * 17 MOD 256, seq * 31 MOD 256, seq * 7 MOD 256, seq MOD 256),
                  'agent', ELT(1 + seq MOD 4, 'Mozilla/5.0 (X11; Linux x86_64)', 'Mozilla/5.0 (Macintosh)',
                               'curl/8.5.0', 'okhttp/4.12'),
                  'session', MD5(seq), 'items', seq MOD 9),
      CONCAT('customer ', seq MOD 50000, ' ', SUBSTR(CONCAT(MD5(seq * 3), MD5(seq * 5)), 1, 20 + seq MOD 40))
      FROM seq_${from}_to_${to}"
  done
  sql "$db" -e 'ANALYZE TABLE events' >/dev/null
}
size_of_db() {
  sql -e "SELECT ROUND(SUM(data_length + index_length) / 1048576, 2) FROM information_schema.TABLES
    WHERE table_schema = '$1'"
}

echo "generating ~$GB GB ($ROWS rows) of data…" >&2
started=$(date +%s)
make_table bench "$ROWS"
make_table tiny 100
SIZE_MB=$(size_of_db bench)
TINY_MB=$(size_of_db tiny)
echo "generated in $(($(date +%s) - started)) s: ${SIZE_MB} MiB on disk" >&2

CONN="--no-defaults --protocol=TCP --host=127.0.0.1 --port=$PORT --user=root"
dump() {
  echo "mariadb-dump $CONN --single-transaction --routines --triggers --events --hex-blob" \
    "--default-character-set=utf8mb4 --no-tablespaces --master-data=2 --gtid $1"
}
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
    # 75: a deadlock, which run_table retries once for myloader itself (see there).
    grep -q 'Deadlock found' "$WORK/stderr.txt" && exit 75
    exit 1
  fi
  read -r seconds top user sys <"$stats"
  echo "$seconds $top $peak $(awk -v u="$user" -v s="$sys" -v b="$before" -v a="$(server_cpu)" \
    'BEGIN { printf "%.2f", u + s + a - b }')"
}

# The client's password for mydumper/myloader (a 0600 file, never argv).
DEFAULTS="$WORK/client.cnf"
printf '[client]\npassword=%s\n' "$PASSWORD" >"$DEFAULTS"
chmod 600 "$DEFAULTS"
MYCONN="--defaults-file=$DEFAULTS --host=127.0.0.1 --port=$PORT --user=root"
# mydumper splits a table into row chunks (--rows), so even one large table is dumped in parallel.
mydumper_to() { echo "mydumper $MYCONN --database=$1 --trx-consistency-only --rows=250000 --outputdir $2"; }
DB_ENV="DBBACKUP_SOURCE_PASSWORD=\$MYSQL_PWD DBBACKUP_TARGET_PASSWORD=\$MYSQL_PWD DBBACKUP_LOG_FORMAT=json"
URL="mysql://root@127.0.0.1:$PORT"
# backup_cmd DATABASE STORE OPTION…, restore_cmd STORE TARGET OPTION…: the dbbackup command lines.
backup_cmd() { echo "$DB_ENV node $DBBACKUP backup --engine mysql --source $URL/$1 --to file://$OUT/$2 ${*:3}"; }
restore_cmd() { echo "$DB_ENV node $DBBACKUP restore --from file://$OUT/$1 --latest --target $URL/$2 ${*:3}"; }
# Untimed, before every variant: the binary log (on, as in production) starts empty, so that the
# restores' binlogs do not pile up on disk.
fresh() { sql -e 'FLUSH BINARY LOGS; PURGE BINARY LOGS BEFORE NOW()'; }
new_target() { fresh && sql -e "DROP DATABASE IF EXISTS $1"; }

# The variants: add TABLE KEY BASE1 BASE2 NAME COMMAND [BEFORE [AFTER [STORED]]]. BASE1/BASE2: the keys of
# the variants its ratios are taken against ('-': none); BEFORE and AFTER run untimed around each
# measurement (AFTER once STORED, a path, has been measured).
TABLE=() KEY=() BASE1=() BASE2=() NAME=() COMMAND=() BEFORE=() AFTER=() STORED=()
declare -A INDEX
add() {
  local i=${#KEY[@]}
  TABLE[i]=$1 KEY[i]=$2 BASE1[i]=$3 BASE2[i]=$4 NAME[i]=$5 COMMAND[i]=$6
  BEFORE[i]=${7:-fresh} AFTER[i]=${8:-} STORED[i]=${9:-}
  INDEX[$2]=$i
}

# Backups: against the shell pipeline (b) and the producer alone (p).
add backup p b p "(p) mariadb-dump > /dev/null (producer alone)" "$(dump bench) > /dev/null"
add backup b b p "(b) mariadb-dump | zstd -T0 > file" "$(dump bench) | zstd -q -T0 > $OUT/b.sql.zst" \
  fresh "" "$OUT/b.sql.zst"
add backup s1 b p "dbbackup backup --jobs 1 (mariadb-dump)" "$(backup_cmd bench s1 --jobs 1)" \
  "fresh; rm -rf $OUT/s1" "" "$OUT/s1"
add backup s1e b p "dbbackup backup --jobs 1 --row-counts estimate" \
  "$(backup_cmd bench s1e --jobs 1 --row-counts estimate)" "fresh; rm -rf $OUT/s1e" "rm -rf $OUT/s1e" "$OUT/s1e"
for n in "${PARALLEL[@]}"; do
  # The directory of the largest -t stays: myloader restores from it.
  keep="rm -rf $OUT/my$n"
  [ "$n" = "$MAXJOBS" ] && keep=""
  add backup "p$n" "b$n" "p$n" "(p$n) mydumper -t $n to a directory (producer alone)" \
    "$(mydumper_to bench "$OUT/my$n") --threads=$n" "fresh; rm -rf $OUT/my$n" "$keep"
  add backup "b$n" "b$n" "p$n" "(b$n) mydumper -t $n && tar -c | zstd -T0 > file" \
    "$(mydumper_to bench "$OUT/myz$n") --threads=$n && tar -cf - -C $OUT myz$n | zstd -q -T0 > $OUT/b$n.tar.zst" \
    "fresh; rm -rf $OUT/myz$n $OUT/b$n.tar.zst" "rm -rf $OUT/myz$n $OUT/b$n.tar.zst" "$OUT/b$n.tar.zst"
  add backup "s$n" "b$n" "p$n" "dbbackup backup --jobs $n (mydumper)" "$(backup_cmd bench "s$n" --jobs "$n")" \
    "fresh; rm -rf $OUT/s$n" "" "$OUT/s$n"
done
add tinybackup tp tb tp "(tp) mariadb-dump > /dev/null (producer alone)" "$(dump tiny) > /dev/null"
add tinybackup tb tb tp "(tb) mariadb-dump | zstd -T0 > file" "$(dump tiny) | zstd -q -T0 > $OUT/tiny.sql.zst" \
  fresh "" "$OUT/tiny.sql.zst"
add tinybackup ts tb tp "dbbackup backup --jobs 1" "$(backup_cmd tiny ts --jobs 1)" "fresh; rm -rf $OUT/ts" "" \
  "$OUT/ts"

# Restores, into a new database each time: the single stream into the client, myloader -t N from
# the uncompressed mydumper directory, dbbackup from its backups above. myloader writes the binary
# log (--enable-binlog) as the client and dbbackup do: without it, it skips that work (SQL_LOG_BIN=0).
RZ=rz
if [ "$RESTORES" = parallel ]; then
  RZ=-
else
  add restore rz rz - "(rz) zstd -dc file | mariadb (the file of (b))" \
    "zstd -q -dc $OUT/b.sql.zst | mariadb $CONN r" "new_target r && sql -e 'CREATE DATABASE r'"
  add restore sr1 rz - "dbbackup restore --jobs 1 (of the --jobs 1 backup)" "$(restore_cmd s1 r --jobs 1)" \
    "new_target r"
fi
for n in "${PARALLEL[@]}"; do
  add restore "ml$n" "ml$n" "$RZ" "(ml$n) myloader -t $n from a local directory (uncompressed)" \
    "myloader $MYCONN --directory=$OUT/my$MAXJOBS --database=r --threads=$n --enable-binlog" "new_target r"
  add restore "sr$n" "ml$n" "$RZ" "dbbackup restore --jobs $n (of the --jobs $n backup)" \
    "$(restore_cmd "s$n" r --jobs "$n")" "new_target r"
done
add tinyrestore tr tr - "(tr) zstd -dc file | mariadb (the file of (tb))" \
  "zstd -q -dc $OUT/tiny.sql.zst | mariadb $CONN rt" "new_target rt && sql -e 'CREATE DATABASE rt'"
add tinyrestore tsr tr - "dbbackup restore --jobs 1" "$(restore_cmd ts rt --jobs 1)" "new_target rt"

declare -A RESULTS SIZE DATE LOAD_START LOAD_END
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
minutes_in() { awk -v s="$(($(date +%s) - BENCH_STARTED))" 'BEGIN { printf "%.1f min", s / 60 }'; }
# run_table TABLE RUNS: every variant of TABLE, RUNS times over.
run_table() {
  DATE[$1]=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  LOAD_START[$1]=$(loadavg)
  for ((run = 1; run <= $2; run++)); do
    for i in "${!KEY[@]}"; do
      [ "${TABLE[$i]}" = "$1" ] || continue
      eval "${BEFORE[$i]}"
      echo "run $run/$2: ${NAME[$i]} … (started $(date -u +%H:%M:%S))" >&2
      # myloader 0.10 loads with UNIQUE_CHECKS=0, and MariaDB 10.6+ then locks an empty InnoDB table
      # whole for its first insert: its threads starting on the same empty table can deadlock. Such
      # a run of the baseline (mlN) is made again once, saying so (dbbackup loads a table's first
      # row file alone, runner/src/engines/mysql/parallel-restore.ts; its failures are never retried).
      local rc=0
      m=$(measure "${NAME[$i]}" "${COMMAND[$i]}") || rc=$?
      if [ "$rc" = 75 ] && [[ "${NAME[$i]}" == "(ml"* ]]; then
        echo "bench: ${NAME[$i]} deadlocked (myloader 0.10 on an empty table); its run is made again" >&2
        eval "${BEFORE[$i]}"
        rc=0
        m=$(measure "${NAME[$i]}" "${COMMAND[$i]}") || rc=$?
      fi
      [ "$rc" = 0 ] || exit 1
      RESULTS[$i]+="$m"$'\n'
      [ -n "${STORED[$i]}" ] && SIZE[$i]=$(du -sk "${STORED[$i]}" | cut -f1)
      eval "${AFTER[$i]}"
      echo "run $run/$2: ${NAME[$i]}: $(echo "$m" | cut -d' ' -f1) s, CPU $(echo "$m" | cut -d' ' -f4) s" \
        "($(minutes_in) in)" >&2
    done
  done
  LOAD_END[$1]=$(loadavg)
}
# untimed WHAT COMMAND: make an input the measured restores need.
untimed() {
  echo "making $1 (not timed)…" >&2
  measure "$1" "$2" >/dev/null
}

TABLES=()
if [ "$ONLY" != restore ]; then
  run_table backup "$RUNS"
  run_table tinybackup "$TINY_RUNS"
  TABLES+=(backup tinybackup)
elif [ "$RESTORES" != 0 ]; then
  if [ "$RESTORES" != parallel ]; then
    untimed "the zstd file of (b)" "${COMMAND[${INDEX[b]}]}"
    untimed "the --jobs 1 backup" "${COMMAND[${INDEX[s1]}]}"
  fi
  for n in "${PARALLEL[@]}"; do
    untimed "the --jobs $n backup" "${COMMAND[${INDEX[s$n]}]}"
  done
  [ "${#PARALLEL[@]}" -gt 0 ] && untimed "the mydumper directory" "${COMMAND[${INDEX[p$MAXJOBS]}]}"
  untimed "the zstd file of (tb)" "${COMMAND[${INDEX[tb]}]}"
  untimed "the tiny backup" "${COMMAND[${INDEX[ts]}]}"
fi
if [ "$ONLY" != backup ] && [ "$RESTORES" != 0 ]; then
  echo "disk in use now: $(du -sh "$WORK" | cut -f1) in $WORK (data directory and inputs)" >&2
  run_table restore "$RUNS"
  run_table tinyrestore "$TINY_RUNS"
  TABLES+=(restore tinyrestore)
elif [ "$ONLY" != backup ]; then
  echo "bench: restores skipped (BENCH_MARIADB_RESTORES=0)" >&2
fi

# median COLUMN LINES: the median of one column of the measurements; peak COLUMN LINES: the maximum (KiB -> MiB).
median() {
  printf '%s' "$2" | awk -v c="$1" 'NF { print $c }' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}
peak() { printf '%s' "$2" | awk -v c="$1" 'NF && $c > m { m = $c } END { printf "%d", m / 1024 }'; }
declare -A WALL CPU
for i in "${!KEY[@]}"; do
  [ -n "${RESULTS[$i]:-}" ] || continue
  WALL[$i]=$(median 1 "${RESULTS[$i]}")
  CPU[$i]=$(median 4 "${RESULTS[$i]}")
done
# ratio I BASEKEY: "wall x, CPU x (base)" of variant I over the variant BASEKEY.
ratio() {
  [ "$2" = - ] && return
  local b=${INDEX[$2]}
  awk -v w="${WALL[$1]}" -v c="${CPU[$1]}" -v bw="${WALL[$b]}" -v bc="${CPU[$b]}" -v k="$2" \
    'BEGIN { printf "%.2fx, %s (%s)", w / bw, (bc > 0 ? sprintf("%.2fx", c / bc) : "-"), k }'
}
difference() {
  local b=${INDEX[$2]}
  awk -v w="${WALL[$1]}" -v c="${CPU[$1]}" -v bw="${WALL[$b]}" -v bc="${CPU[$b]}" \
    'BEGIN { printf "%+.2f s, %+.2f s", w - bw, c - bc }'
}
VERSION=$(sql -e 'SELECT VERSION()')
for t in "${TABLES[@]}"; do
  case "$t" in
    backup) title="Backups of $SIZE_MB MiB (file:// storage, zstd -3 -T0)" size=$SIZE_MB runs=$RUNS diff=""
      cols="vs shell pipeline: wall, CPU | vs producer alone: wall, CPU" ;;
    tinybackup) title="Fixed cost: backups of a tiny database (one table of 100 rows)" size=$TINY_MB
      runs=$TINY_RUNS diff=1 cols="vs shell pipeline: wall, CPU | vs producer alone: wall, CPU" ;;
    restore) title="Restores of $SIZE_MB MiB (into a new database; binary log on)" size=$SIZE_MB runs=$RUNS diff=""
      cols="vs the tool at the same -t (rz: one client; ml: myloader): wall, CPU"
      cols+=" | vs (rz) zstd -dc \\| mariadb: wall, CPU" ;;
    tinyrestore) title="Fixed cost: restores of the tiny database (into a new database)" size=$TINY_MB
      runs=$TINY_RUNS diff=1 cols="vs shell pipeline: wall, CPU" ;;
  esac
  echo
  echo "$title"
  echo
  echo "MariaDB $VERSION, ${DATE[$t]}, database $size MiB on disk, median of $runs runs, $(nproc) cores," \
    "load average ${LOAD_START[$t]} at start, ${LOAD_END[$t]} at end (1, 5, 15 min). Ratios: wall time, then CPU" \
    "seconds (user + system of the command's processes and of mariadbd), each over the variant named in brackets."
  echo
  two=""
  [[ "$cols" == *" | "* ]] && two=1
  echo "| variant | wall | CPU | $cols |${diff:+ extra over the first: wall, CPU |} stored |" \
    "peak RSS, largest process | peak RSS, process tree |"
  echo "|---|---|---|---|${two:+---|}${diff:+---|}---|---|---|"
  for i in "${!KEY[@]}"; do
    [ "${TABLE[$i]}" = "$t" ] || continue
    stored=""
    [ -n "${SIZE[$i]:-}" ] &&
      stored=$(awk -v k="${SIZE[$i]}" 'BEGIN { printf (k < 1024 ? "%.2f MiB" : "%.0f MiB"), k / 1024 }')
    printf '| %s | %s s | %s s | %s |%s%s %s | %s MiB | %s MiB |\n' "${NAME[$i]//|/\\|}" "${WALL[$i]}" "${CPU[$i]}" \
      "$(ratio "$i" "${BASE1[$i]}")" "${two:+ $(ratio "$i" "${BASE2[$i]}") |}" \
      "${diff:+ $(difference "$i" "${BASE1[$i]}") |}" "$stored" "$(peak 2 "${RESULTS[$i]}")" \
      "$(peak 3 "${RESULTS[$i]}")"
  done
done
