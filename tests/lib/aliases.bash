# postroom: ISC license, see LICENSE.
# Large alias layouts for the bats suite, loaded after lib/common with `load lib/aliases`; each
# prints userdb(5) alias lines, one per line (read them with mapfile for make_userdb):
#   alias_of NAME K PATTERN   "alias NAME T1,...,TK", Ti being PATTERN with each # made i
#   chain N K                 aliases c1 ... cN at example.test, each listing the next K times,
#                             the last alice: K^N paths to one mailbox
#   wide N K                  wide@example.test, listing N aliases w1 ... wN that each list K
#                             remote addresses of their own: N*K distinct final targets
#   repeat N K                rep@example.test, listing N aliases p1 ... pN that each list
#                             y@example.test K times, and y an alias of alice: one target,
#                             about N*K lookups

alias_of() {
	local i line="alias $1 "
	for ((i = 1; i <= $2; i++)); do line+="${3//#/$i},"; done
	echo "${line%,}"
}

chain() {
	local i next
	for ((i = 1; i <= $1; i++)); do
		next=c$((i + 1))@example.test
		[ "$i" -lt "$1" ] || next=alice@example.test
		alias_of "c$i@example.test" "$2" "$next"
	done
}

wide() {
	local i
	alias_of wide@example.test "$1" 'w#@example.test'
	for ((i = 1; i <= $1; i++)); do alias_of "w$i@example.test" "$2" "r$i.#@remote.test"; done
}

repeat() {
	local i
	alias_of rep@example.test "$1" 'p#@example.test'
	for ((i = 1; i <= $1; i++)); do alias_of "p$i@example.test" "$2" y@example.test; done
	echo 'alias y@example.test alice@example.test'
}
