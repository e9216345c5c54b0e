#!/bin/sh
# Build every libFuzzer harness (tests/fuzz/fuzz_*.c) into build-fuzz/, each linked with the
# library sources (net zab tree wal snap; not server.c, which has main).
# Usage: tests/fuzz/build.sh [harness...]      (run from anywhere; needs clang >= 14)
set -eu
cd "$(dirname "$0")/../.."
CC=${CC:-clang}
OUT=build-fuzz
WARN="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
-Wformat=2 -Wvla -Wpointer-arith -Wcast-qual -Wno-unused-parameter"
SAN="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
CFLAGS="-g -O1 $WARN -I."
mkdir -p "$OUT/lib"

# The library once, instrumented (fuzzer-no-link: coverage without a second main).
objs=""
for src in net/*.c zab/*.c tree/*.c wal/*.c snap/*.c; do
	obj="$OUT/lib/$(echo "$src" | tr / _).o"
	if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ -n "$(find net zab tree wal snap -name '*.h' -newer "$obj" | head -1)" ]; then
		$CC $CFLAGS -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
			-fno-omit-frame-pointer -c -o "$obj" "$src"
	fi
	objs="$objs $obj"
done

if [ $# -gt 0 ]; then names="$*"; else
	names=$(ls tests/fuzz/fuzz_*.c | sed 's|.*/fuzz_||; s|\.c$||')
fi
for name in $names; do
	echo "  CC  $OUT/fuzz_$name"
	$CC $CFLAGS $SAN -o "$OUT/fuzz_$name" "tests/fuzz/fuzz_$name.c" $objs
done
