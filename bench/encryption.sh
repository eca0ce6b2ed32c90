#!/usr/bin/env bash
# Encryption throughput on one core: age (what the runner runs), gpg (AES256, no compression,
# as --encrypt gpg: runs it) and openssl enc -aes-256-ctr (as --encrypt openssl: runs it)
# against the plain copy, on
# 1 GiB of incompressible data kept in the page cache, output to /dev/null (the cipher, not the
# disk, is measured). Prints MB/s; asserts nothing.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
size_mib=${BENCH_MIB:-1024}
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/data"
age-keygen -o "$work/key" 2>/dev/null
recipient=$(age-keygen -y "$work/key")
export GNUPGHOME="$work/gnupg"
mkdir -m 700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-generate-key 'bench <bench@example.invalid>' future-default default never
(umask 077 && openssl rand -base64 32 > "$work/openssl.key")
gpg_enc="gpg --batch --quiet --trust-model always --compress-algo none --cipher-algo AES256 --force-mdc"
ssl="openssl enc -aes-256-ctr -pbkdf2 -iter 100000 -md sha256 -pass file:$work/openssl.key"
cat "$work/data" > /dev/null   # warm the page cache

rate() { # label, command... ; wall-clock MB/s, and MB per CPU second (steadier on a busy machine)
  local label=$1; shift
  local start end cpu
  start=$(date +%s.%N)
  cpu=$( { TIMEFORMAT='%3U %3S'; time "$@" ; } 2>&1 >/dev/null | tail -1)
  end=$(date +%s.%N)
  awk -v l="$label" -v s="$start" -v e="$end" -v m="$size_mib" -v c="$cpu" 'BEGIN {
    split(c, t, " "); cs = t[1] + t[2]
    printf "%-34s %6.2f s  %7.0f MB/s  %6.2f CPU s  %7.0f MB/CPU s\n", l, e - s, m * 1.048576 / (e - s), cs, m * 1.048576 / cs }'
}

echo "one core (taskset -c 0), ${size_mib} MiB"
rate "cat (copy only)" taskset -c 0 sh -c "cat '$work/data' > /dev/null"
rate "age -e (ChaCha20-Poly1305)" taskset -c 0 sh -c "age -e -r '$recipient' < '$work/data' > /dev/null"
age -e -r "$recipient" < "$work/data" > "$work/data.age"   # untimed: the input of the decryption run
rate "age -d" taskset -c 0 sh -c "age -d -i '$work/key' < '$work/data.age' > /dev/null"
rate "gpg --encrypt (AES256, MDC)" taskset -c 0 sh -c "$gpg_enc -r bench@example.invalid --encrypt < '$work/data' > /dev/null"
$gpg_enc -r bench@example.invalid --encrypt < "$work/data" > "$work/data.gpg"
rate "gpg --decrypt" taskset -c 0 sh -c "gpg --batch --quiet --decrypt < '$work/data.gpg' > /dev/null"
rm -f "$work/data.gpg"
rate "openssl enc -aes-256-ctr" taskset -c 0 sh -c "$ssl -salt < '$work/data' > /dev/null"
$ssl -salt < "$work/data" > "$work/data.enc"
rate "openssl enc -d -aes-256-ctr" taskset -c 0 sh -c "$ssl -d < '$work/data.enc' > /dev/null"
gpgconf --kill gpg-agent
