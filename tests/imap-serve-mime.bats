#!/usr/bin/env bats
# postroom: ISC license, see LICENSE.
# imap-serve's MIME answers are Dovecot's: for every message of tests/fixtures/mime/, alone in
# a Maildir, FETCH RFC822.SIZE, ENVELOPE, BODY, BODYSTRUCTURE and BODY.PEEK[...] of every part
# (HEADER, TEXT, MIME, HEADER.FIELDS, HEADER.FIELDS.NOT, parts that do not exist) give the same
# bytes from imap-serve -A as from Dovecot's own imap binary run preauthenticated on a
# throwaway configuration (no daemon, no network), compared item by item.
# 44-*.eml is left out: Dovecot's BODY[n.HEADER.FIELDS (...)] of a message/rfc822 whose message
# a boundary cuts short reads past the part, which postroom does not copy.

load lib/common

CORPUS=$REPO/tests/fixtures/mime

setup() {
	make_private_dir
	[ -x "$BIN/imap-serve" ] || fail "imap-serve is not built in $BIN"
	[ -x /usr/lib/dovecot/imap ] || fail "Dovecot's imap is not installed (make deps)"
	DOVECOT="setpriv --reuid=$NOBODY_UID --regid=$NOBODY_GID --clear-groups env -i USER=nobody HOME={home} /usr/lib/dovecot/imap -c {home}/dovecot.conf"
	POSTROOM="cd {maildir} && MAILDIR={maildir} exec $BIN/imap-serve -A"
}

# compare MESSAGE...: the comparison script on the messages; its report is the failure text.
compare() {
	# A reply the script cannot parse must fail the test, not hang it.
	run --separate-stderr timeout 300 "$PYTHON" "$TESTLIB/imap_mime_compare.py" \
		--workdir "$PRIVATE_DIR/work" --ref "$DOVECOT" --test "$POSTROOM" "$@"
	[ "$status" -eq 0 ] || fail "$(printf '%s\n' "$output" "$stderr" | head -c 20000)"
}

@test "mime corpus: at least 40 hand-written messages, LF line ends but for the CRLF one" {
	local n=0 f
	for f in "$CORPUS"/*.eml; do
		n=$((n + 1))
		case $f in
		*-crlf.eml) grep -q $'\r$' "$f" || fail "$f has no CRLF" ;;
		*) ! grep -q $'\r$' "$f" || fail "$f has CRLF line ends" ;;
		esac
	done
	[ "$n" -ge 40 ] || fail "only $n messages"
}

@test "imap-serve: well-formed messages (plain, multipart, rfc822, RFC 2047/2231, groups)" {
	compare "$CORPUS"/0*.eml "$CORPUS"/1[0-2]-*.eml "$CORPUS"/2[2-9]-*.eml
}

@test "imap-serve: broken MIME degrades as Dovecot's parser does" {
	compare "$CORPUS"/1[3-9]-*.eml "$CORPUS"/2[01]-*.eml "$CORPUS"/3*.eml \
		"$CORPUS"/4[0-3]-*.eml "$CORPUS"/4[5-9]-*.eml
}
