# postroom: ISC license, see LICENSE.
# Large alias layouts for the bats suite, loaded after lib/common with `load lib/aliases`; each
# prints userdb(5) alias lines, one per line (read them with mapfile for make_userdb):
#   chain N K      aliases c1 ... cN at example.test, each listing the next K times, the last
#                  alice: K^N paths to one mailbox
#   wide N K       wide@example.test, listing N aliases w1 ... wN that each list K remote
#                  addresses of their own: N*K distinct final targets
#   repeat N K     rep@example.test, listing N aliases p1 ... pN that each list y@example.test
#                  K times, and y an alias of alice: one target, about N*K lookups

chain() {
	local i k next line
	for ((i = 1; i <= $1; i++)); do
		next=c$((i + 1))@example.test
		[ "$i" -lt "$1" ] || next=alice@example.test
		line="alias c$i@example.test $next"
		for ((k = 1; k < $2; k++)); do line+=",$next"; done
		echo "$line"
	done
}

# fanout NAME PREFIX N: "alias NAME PREFIX1@example.test,...,PREFIXN@example.test"
fanout() {
	local i line="alias $1 ${2}1@example.test"
	for ((i = 2; i <= $3; i++)); do line+=",$2$i@example.test"; done
	echo "$line"
}

wide() {
	local i k line
	fanout wide@example.test w "$1"
	for ((i = 1; i <= $1; i++)); do
		line="alias w$i@example.test r$i.1@remote.test"
		for ((k = 2; k <= $2; k++)); do line+=",r$i.$k@remote.test"; done
		echo "$line"
	done
}

repeat() {
	local i k line
	fanout rep@example.test p "$1"
	for ((i = 1; i <= $1; i++)); do
		line="alias p$i@example.test y@example.test"
		for ((k = 2; k <= $2; k++)); do line+=",y@example.test"; done
		echo "$line"
	done
	echo 'alias y@example.test alice@example.test'
}
