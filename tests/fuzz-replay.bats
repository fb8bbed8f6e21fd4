#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# The fuzzing harnesses of tests/fuzz/ replayed on their seed corpus (tests/fuzz/corpus/NAME)
# and on every crash ever found (tests/fuzz/crashes/NAME), under ASan+UBSan with leak detection:
# one test per harness. The harnesses are built here (make fuzz-bin): with clang, libFuzzer
# binaries, which run each file given once; without, the same harnesses with a replay driver.
# make fuzz is what fuzzes; this only checks that nothing found so far comes back.

load lib/common

setup_file() {
	make -C "$BATS_TEST_DIRNAME/.." -s -j"$(nproc)" fuzz-bin >"$BATS_FILE_TMPDIR/make.log" 2>&1 || {
		cat "$BATS_FILE_TMPDIR/make.log" >&3
		return 1
	}
}

# replay NAME: every seed and crash input of harness NAME, each once.
replay() {
	local name=$1 fuzz=$REPO/tests/fuzz inputs=()
	local dir file
	for dir in "$fuzz/corpus/$name" "$fuzz/crashes/$name"; do
		[ -d "$dir" ] || continue
		for file in "$dir"/*; do
			[ -f "$file" ] && inputs+=("$file")
		done
	done
	[ "${#inputs[@]}" -gt 0 ] || fail "no seeds in tests/fuzz/corpus/$name"
	# The harnesses free what they allocate: a leak is a finding too. TMPDIR for those that
	# write files (queue_read); each removes its directory at exit.
	TMPDIR=$BATS_TEST_TMPDIR \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=86 \
	UBSAN_OPTIONS=halt_on_error=1:exitcode=86:print_stacktrace=1 \
		run --separate-stderr "$REPO/build/fuzz/bin/$name" "${inputs[@]}"
	if [ "$status" -ne 0 ]; then
		printf '%s\n' "$stderr" | tail -n 60
		fail "harness $name failed on an input (exit $status)"
	fi
	local executed
	executed=$(printf '%s\n' "$stderr" | grep -c '^Executed ')
	[ "$executed" -eq "${#inputs[@]}" ] ||
		fail "harness $name ran $executed of ${#inputs[@]} inputs"
}

@test "fuzz replay: addr (lib/addr.c)" {
	replay addr
}

@test "fuzz replay: imap_cmd (lib/imap_cmd.c)" {
	replay imap_cmd
}

@test "fuzz replay: mime (lib/mime*.c, imap_subject.c)" {
	replay mime
}

@test "fuzz replay: queue_read (lib/queue_read.c)" {
	replay queue_read
}

@test "fuzz replay: smtp_cmd (getln, addr, dsn_param, sasl, smtp_options)" {
	replay smtp_cmd
}

@test "fuzz replay: smtp_data (lib/smtp_data.c)" {
	replay smtp_data
}

@test "fuzz replay: userdb_text (lib/userdb_text.c, userdb_build.c, resolve.c)" {
	replay userdb_text
}

@test "fuzz replay: every harness of make fuzz has a test here" {
	local listed
	listed=$(sed -n 's/^FUZZ_HARNESSES = //p' "$REPO/Makefile")
	[ -n "$listed" ] || fail "FUZZ_HARNESSES not found in the Makefile"
	local h
	for h in $listed; do
		grep -q "^	replay $h\$" "$BATS_TEST_FILENAME" || fail "no replay test for $h"
		[ -f "$REPO/tests/fuzz/$h.c" ] || fail "no tests/fuzz/$h.c"
	done
}
