#!/bin/sh
# `imagesd keys` and `imagesd usage` on a fresh data directory: help, exit status of bad
# options, a key's life (create, list, revoke), and usage totals of an empty ledger. The
# server-side effects (a key used, usage after traffic) are in tests/integration. TAP output.
set -u
BIN=${IMAGESD_BIN:-build/imagesd}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }
D="$T/data"

"$BIN" usage --help >"$T/out" 2>"$T/err"
check "usage --help: exit 0, the options on stdout" \
    "[ $? -eq 0 ] && grep -q -- '--since' '$T/out' && grep -q -- '--by' '$T/out' && [ ! -s '$T/err' ]"
"$BIN" keys --help >"$T/out" 2>&1
check "keys --help: exit 0, the three subcommands" \
    "[ $? -eq 0 ] && grep -q 'keys create' '$T/out' && grep -q 'keys revoke' '$T/out'"
"$BIN" keys create -h >"$T/out" 2>&1
check "keys create -h: help, no key made" \
    "[ $? -eq 0 ] && grep -q -- '--name' '$T/out' && [ ! -e '$D' ]"
"$BIN" keys >"$T/out" 2>"$T/err"
check "keys without a subcommand: exit 2, usage on stderr" "[ $? -eq 2 ] && grep -q 'usage:' '$T/err'"

"$BIN" usage --frobnicate --data-dir "$D" 2>"$T/err"
check "usage with an unknown option: exit 2 naming it" "[ $? -eq 2 ] && grep -q frobnicate '$T/err'"
"$BIN" usage --since yesterday --data-dir "$D" 2>"$T/err"
check "usage --since with a bad date: exit 2" "[ $? -eq 2 ] && grep -q -- '--since' '$T/err'"
"$BIN" usage --by colour --data-dir "$D" 2>"$T/err"
check "usage --by with a bad grouping: exit 2" "[ $? -eq 2 ] && grep -q colour '$T/err'"
"$BIN" usage --since 2>"$T/err"
check "usage --since without a value: exit 2" "[ $? -eq 2 ] && grep -q 'needs a value' '$T/err'"

"$BIN" usage --json --data-dir "$D" >"$T/out" 2>"$T/err"
check "usage --json on an empty ledger: zero requests" \
    "[ $? -eq 0 ] && grep -q '\"requests\": *0' '$T/out'"
"$BIN" keys create --data-dir "$D" 2>"$T/err"
check "keys create without --name: exit 2" "[ $? -eq 2 ] && grep -q -- '--name' '$T/err'"
"$BIN" keys create --name ci --rpm ten --data-dir "$D" 2>"$T/err"
check "keys create --rpm ten: exit 2" "[ $? -eq 2 ] && grep -q -- '--rpm' '$T/err'"
"$BIN" keys create --name ci --rpm 60 --json --data-dir "$D" >"$T/key" 2>"$T/err"
check "keys create: exit 0, prints the secret once" "[ $? -eq 0 ] && grep -q '\"key\": *\"sk-' '$T/key'"
id=$(sed -n 's/.*"id": *"\([^"]*\)".*/\1/p' "$T/key" | head -1)
secret=$(sed -n 's/.*"key": *"\([^"]*\)".*/\1/p' "$T/key" | head -1)
"$BIN" keys list --data-dir "$D" >"$T/out" 2>&1
check "keys list shows the key by id and name, never its secret" \
    "[ $? -eq 0 ] && [ -n '$id' ] && grep -q '$id' '$T/out' && grep -q ci '$T/out' && ! grep -q -- '$secret' '$T/out'"
"$BIN" keys revoke "$id" --data-dir "$D" 2>"$T/err"
check "keys revoke ID: exit 0" "[ $? -eq 0 ]"
"$BIN" keys revoke key_nonexistent --data-dir "$D" 2>"$T/err"
check "keys revoke of an unknown id: exit 1 with a message" "[ $? -eq 1 ] && [ -s '$T/err' ]"

echo "1..$n"
[ "$fails" -eq 0 ]
