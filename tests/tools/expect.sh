# tests/tools/expect.sh - what the convctl shell tests share, sourced by each: a fresh temp
# folder $dir (removed on exit), $fail, and the two assertions. A failed one prints FAIL and a
# reason and sets fail=1; the script ends with `exit $fail`.
dir=$(mktemp -d /tmp/convctl-test.XXXXXX) || exit 1
trap 'rm -rf "$dir"' EXIT
fail=0
expect() { # expect WHAT GOT WANT
	if [ "$2" != "$3" ]; then
		echo "FAIL $1: got [$2], want [$3]"
		fail=1
	fi
}
has() { # has WHAT FILE TEXT: FILE contains TEXT
	grep -qF -- "$3" "$2" || { echo "FAIL $1: no [$3] in [$(cat "$2")]"; fail=1; }
}
