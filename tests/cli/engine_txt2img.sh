#!/bin/sh
# `imagesd engine txt2img` end to end on a tiny random SD1 model that the test writes itself
# (tools/mksdmodel, tools/mkclipvocab): the PNG it writes, determinism by seed, batches, and
# the exit status of bad input. TAP output.
set -u
BIN=${IMAGESD_BIN:-build/imagesd}
TOOLS=$(dirname "$BIN")/tools
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }
# png_dims FILE: "WIDTHxHEIGHT" from the IHDR chunk
png_dims() {
    w=$(od -An -tu1 -j16 -N4 "$1" | awk '{print $1*16777216+$2*65536+$3*256+$4}')
    h=$(od -An -tu1 -j20 -N4 "$1" | awk '{print $1*16777216+$2*65536+$3*256+$4}')
    echo "${w}x${h}"
}
is_png() { [ "$(od -An -c -j1 -N3 "$1" 2>/dev/null | tr -d ' ')" = "PNG" ]; }

"$TOOLS/mksdmodel" --preset tiny-sd1 --layout single --dtype f16 -o "$T/tiny.safetensors" >/dev/null || exit 1
"$TOOLS/mkclipvocab" "$T/tok" small >/dev/null || exit 1
run() { "$BIN" engine txt2img --model "$T/tiny.safetensors" --tokenizer "$T/tok" --quiet "$@"; }

run --prompt "a red fox" --width 64 --height 48 --steps 3 --seed 7 -o "$T/a.png" 2>"$T/err"
check "txt2img exits 0" "[ $? -eq 0 ]"
check "it writes a PNG of the asked size" "is_png '$T/a.png' && [ \"\$(png_dims '$T/a.png')\" = 64x48 ]"

run --prompt "a red fox" --width 64 --height 48 --steps 3 --seed 7 -o "$T/b.png" 2>/dev/null
check "the same seed gives the same image" "cmp -s '$T/a.png' '$T/b.png'"
run --prompt "a red fox" --width 64 --height 48 --steps 3 --seed 8 -o "$T/c.png" 2>/dev/null
check "another seed gives another image" "! cmp -s '$T/a.png' '$T/c.png'"
run --prompt "a blue whale" --width 64 --height 48 --steps 3 --seed 7 -o "$T/d.png" 2>/dev/null
check "another prompt gives another image" "! cmp -s '$T/a.png' '$T/d.png'"

run --prompt "a red fox" --width 64 --height 48 --steps 3 --seed 7 --batch 2 -o "$T/batch.png" 2>/dev/null
check "--batch 2 writes two files" "[ -f '$T/batch-0.png' ] && [ -f '$T/batch-1.png' ]"
check "batch image 0 is the seed's image, image 1 seed+1's" \
    "cmp -s '$T/batch-0.png' '$T/a.png' && cmp -s '$T/batch-1.png' '$T/c.png'"

run --prompt "x" --width 60 --height 48 -o "$T/bad.png" 2>"$T/err"
rc=$?
check "a size the UNet cannot take: exit 2 with a message naming it" \
    "[ $rc -eq 2 ] && grep -q '60x48' '$T/err' && [ ! -e '$T/bad.png' ]"
"$BIN" engine txt2img --model "$T/missing.safetensors" --prompt x -o "$T/m.png" 2>"$T/err"
rc=$?
check "a missing model: exit 1 with the path in the message" \
    "[ $rc -eq 1 ] && grep -q 'missing.safetensors' '$T/err'"
printf 'not a model' >"$T/junk.safetensors"
"$BIN" engine txt2img --model "$T/junk.safetensors" --prompt x -o "$T/j.png" 2>"$T/err"
check "a file that is not a checkpoint: exit 1" "[ $? -eq 1 ] && [ -s '$T/err' ]"
run --prompt x --steps zero -o "$T/s.png" 2>"$T/err"
check "a bad number: exit 2 (usage)" "[ $? -eq 2 ] && grep -q steps '$T/err'"
run --prompt x 2>"$T/err"
check "no -o: exit 2 (usage)" "[ $? -eq 2 ]"
"$BIN" engine frobnicate 2>"$T/err"
check "unknown engine command: exit 2" "[ $? -eq 2 ]"

echo "1..$n"
[ "$fails" -eq 0 ]
