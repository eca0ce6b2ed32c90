#!/usr/bin/env bash
# Encryption throughput on one core: age (what the runner runs) against the plain copy, on
# 1 GiB of incompressible data kept in the page cache, output to /dev/null (the cipher, not the
# disk, is measured). Prints MB/s; asserts nothing.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
size_mib=${BENCH_MIB:-1024}
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/data"
age-keygen -o "$work/key" 2>/dev/null
recipient=$(age-keygen -y "$work/key")
cat "$work/data" > /dev/null   # warm the page cache

rate() { # label, command...
  local label=$1; shift
  local start end
  start=$(date +%s.%N)
  "$@"
  end=$(date +%s.%N)
  awk -v l="$label" -v s="$start" -v e="$end" -v m="$size_mib" 'BEGIN { printf "%-34s %6.2f s  %7.0f MB/s\n", l, e - s, m * 1.048576 / (e - s) }'
}

echo "one core (taskset -c 0), ${size_mib} MiB"
rate "cat (copy only)" taskset -c 0 sh -c "cat '$work/data' > /dev/null"
rate "age -e (ChaCha20-Poly1305)" taskset -c 0 sh -c "age -e -r '$recipient' < '$work/data' > /dev/null"
age -e -r "$recipient" < "$work/data" > "$work/data.age"   # untimed: the input of the decryption run
rate "age -d" taskset -c 0 sh -c "age -d -i '$work/key' < '$work/data.age' > /dev/null"
