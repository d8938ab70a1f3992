#!/bin/sh
# convctl on a fresh store: init creates it, stats reports it empty, verify passes; stats on a
# folder without a store fails without creating one; usage errors exit 2 with a message.
# $1 is the convctl binary.
set -u
convctl=$1
# shellcheck source=tests/tools/expect.sh
. "$(dirname "$0")/expect.sh"

"$convctl" --data "$dir/none" stats 2>"$dir/err"
expect "stats without a store exit" $? 1
[ ! -e "$dir/none" ] || { echo "FAIL stats created a store"; fail=1; }
grep -q "convctl: stats: $dir/none: open: No such file or directory" "$dir/err" ||
	{ echo "FAIL no message for a missing store: $(cat "$dir/err")"; fail=1; }

out=$("$convctl" --data "$dir/s" init)
expect "init exit" $? 0
expect "init text" "$out" "store ready (format 2)"
out=$("$convctl" --data "$dir/s" init)
expect "second init exit" $? 0

out=$("$convctl" --data "$dir/s" --json stats)
expect "stats exit" $? 0
expect "stats json" "$(echo "$out" | sed 's/, "map_size".*//')" \
	'{"events": 0, "conversations": 0, "last_position": 0'

out=$("$convctl" --data "$dir/s" verify)
expect "verify exit" $? 0
expect "verify text" "$out" "0 records checked, 0 problems"

"$convctl" --data "$dir/s" frobnicate 2>"$dir/err"
expect "unknown command exit" $? 2
grep -q 'unknown command "frobnicate"' "$dir/err" || { echo "FAIL no message"; fail=1; }
"$convctl" --data "$dir/s" 2>/dev/null
expect "missing command exit" $? 2

# keygen: a fresh token, and a key-file line whose hash is the token's sha-256.
out=$("$convctl" keygen acme append)
expect "keygen exit" $? 0
token=$(echo "$out" | sed -n 's/^token: //p')
line=$(echo "$out" | sed -n 2p)
expect "keygen token length" "${#token}" 64
expect "keygen line" "$line" "$(printf %s "$token" | sha256sum | cut -d' ' -f1) acme append"
other=$("$convctl" keygen acme append | sed -n 's/^token: //p')
[ "$other" != "$token" ] || { echo "FAIL keygen repeated a token"; fail=1; }
set -f # '*' is a tenant here, not a glob
for bad in "acme operator" "* read" "acme owner" "bad/tenant read"; do
	# shellcheck disable=SC2086
	"$convctl" keygen $bad >/dev/null 2>"$dir/err"
	expect "keygen $bad exit" $? 2
done
set +f

echo "not a store" >"$dir/file"
"$convctl" --data "$dir/file" stats 2>"$dir/err"
expect "not a folder exit" $? 1
grep -q "convctl: stats: $dir/file" "$dir/err" || { echo "FAIL no message for a bad folder"; fail=1; }
exit $fail
