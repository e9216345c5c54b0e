#!/bin/sh
# Run each libFuzzer harness for SECONDS, one at a time, starting from a scratch copy of its
# seed corpus (tests/fuzz/corpus/NAME) so the repository's corpus stays small. A crash,
# leak, timeout or contract violation is copied to tests/fuzz/regressions/NAME-<sha8>.bin
# and makes the script exit non-zero after the remaining harnesses ran.
# Usage: tests/fuzz/run.sh SECONDS [harness...]        (build first: tests/fuzz/build.sh)
set -u
cd "$(dirname "$0")/../.."
secs=${1:?usage: run.sh SECONDS [harness...]}
shift
names=${*:-request connect txn config txnlog snapshot snapstream fourlw peerwire}

max_len() {
	case $1 in
	connect|fourlw|peerwire) echo 512 ;;
	request|txn|config) echo 8192 ;;
	txnlog|snapshot|snapstream) echo 16384 ;;
	*) echo 4096 ;;
	esac
}

# Harnesses with a known leak recorded in regressions/, whose leak check is off until it
# is fixed (otherwise every run stops at the first one it finds). Empty when none.
KNOWN_LEAKS=${KNOWN_LEAKS:-}

failed=0
for name in $names; do
	bin=build-fuzz/fuzz_$name
	[ -x "$bin" ] || { echo "$name: $bin missing (run tests/fuzz/build.sh)"; failed=1; continue; }
	work=$(mktemp -d "${TMPDIR:-/tmp}/zkd-fuzz-$name.XXXXXX")
	mkdir -p "$work/corpus" "$work/art"
	[ -d tests/fuzz/corpus/$name ] && cp tests/fuzz/corpus/$name/* "$work/corpus/" 2>/dev/null
	leaks=1
	case " $KNOWN_LEAKS " in *" $name "*) leaks=0 ;; esac
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=$leaks} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	"$bin" -max_total_time="$secs" -max_len="$(max_len "$name")" -rss_limit_mb=2048 \
		-timeout=30 -detect_leaks=$leaks -print_final_stats=1 \
		-artifact_prefix="$work/art/" "$work/corpus" >"$work/log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
	took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$work/log" | tail -1)
	cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$work/log" | tail -1)
	if [ $rc -ne 0 ]; then
		failed=1
		mkdir -p tests/fuzz/regressions
		for a in "$work"/art/*; do
			[ -f "$a" ] || continue
			dst=tests/fuzz/regressions/$name-$(sha1sum "$a" | cut -c1-8).bin
			cp "$a" "$dst"
			echo "$name: FAILED (rc $rc), input kept in $dst"
		done
		grep -m1 -A12 -E 'ERROR|contract violated|runtime error' "$work/log" | sed 's/^/    /'
		echo "$name: log in $work/log"
	else
		echo "$name: ok  executions ${execs:-?}  seconds ${took:-?}  ${cov}  (leak check $leaks)"
		rm -rf "$work"
	fi
done
exit $failed
