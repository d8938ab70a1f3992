#!/bin/sh
# convctl on the tau-bench corpus ($CONVSTORE_CORPUS; exit 77 when it is absent):
# import-openai stores the 200 conversations, and each one's messages view equals its original
# `messages` array; importing again changes nothing; export then import into an empty store
# reproduces every conversation's state exactly (show --json, timestamps included), a second
# import stores nothing, and the copy verifies and rebuilds with no difference; a bad JSONL
# file is refused with its line number and leaves the store unchanged.
# $1 is the convctl binary.
set -u
convctl=$1
file=${CONVSTORE_CORPUS:-}/tau-bench/gpt-4o-airline.conversations.jsonl
[ -n "${CONVSTORE_CORPUS:-}" ] && [ -f "$file" ] || { echo "corpus absent: skipped"; exit 77; }
# shellcheck source=tests/tools/expect.sh
. "$(dirname "$0")/expect.sh"

out=$("$convctl" --data "$dir/s" import-openai "$file")
expect "import-openai exit" $? 0
expect "import-openai text" "$out" "200 conversations (5308 messages) read, 200 of them new or extended"
before=$("$convctl" --data "$dir/s" --json stats)
out=$("$convctl" --data "$dir/s" import-openai "$file")
expect "second import-openai" "$out" "200 conversations (5308 messages) read, 0 of them new or extended"
expect "second import-openai changes nothing" "$("$convctl" --data "$dir/s" --json stats)" "$before"
expect "ls" "$("$convctl" --data "$dir/s" ls | wc -l)" 200

# Every conversation's messages view is its original list, field for field.
python3 - "$convctl" "$dir/s" "$file" <<'EOF' || fail=1
import json, subprocess, sys
convctl, store, path = sys.argv[1:]
bad = 0
for n, line in enumerate(open(path), 1):
    want = json.loads(line)["messages"]
    got = subprocess.run([convctl, "--data", store, "--json", "messages", "openai-%d" % n],
                         capture_output=True, text=True, check=True).stdout
    if json.loads(got)["messages"] != want:
        print("FAIL messages view of line %d differs from the original" % n)
        bad += 1
sys.exit(1 if bad else 0)
EOF

# Export, import into an empty store: the same state, exactly, for every conversation.
"$convctl" --data "$dir/s" export -o "$dir/x.gz" >/dev/null
expect "export exit" $? 0
out=$("$convctl" --data "$dir/copy" import "$dir/x.gz")
expect "import" "$out" "imported 5508 events: 5508 stored, 0 already there"
copied=$("$convctl" --data "$dir/copy" --json stats)
out=$("$convctl" --data "$dir/copy" import "$dir/x.gz")
expect "second import" "$out" "imported 5508 events: 0 stored, 5508 already there"
expect "second import changes nothing" "$("$convctl" --data "$dir/copy" --json stats)" "$copied"
python3 - "$convctl" "$dir/s" "$dir/copy" <<'EOF' || fail=1
import subprocess, sys
convctl, a, b = sys.argv[1:]
def show(store, conv):
    return subprocess.run([convctl, "--data", store, "--json", "show", conv],
                          capture_output=True, text=True, check=True).stdout
bad = [n for n in range(1, 201) if show(a, "openai-%d" % n) != show(b, "openai-%d" % n)]
for n in bad[:5]:
    print("FAIL state of openai-%d differs after export and import" % n)
sys.exit(1 if bad else 0)
EOF
out=$("$convctl" --data "$dir/copy" verify)
expect "verify the copy" "$?:$out" "0:5508 records checked, 0 problems"
out=$("$convctl" --data "$dir/copy" rebuild)
expect "rebuild the copy" "$?:${out% (*}" "0:200 conversations rebuilt from 5508 events, 0 records differed"

# The other commands on the corpus store.
expect "events" "$("$convctl" --data "$dir/s" events openai-1 | wc -l)" 33
expect "events page" "$("$convctl" --data "$dir/s" events openai-1 --from 30 --limit 2 | cut -d' ' -f1-3)" \
	"$(printf '#30 @30 default/openai-1\n#31 @31 default/openai-1')"
expect "replay --json" "$("$convctl" --data "$dir/s" --json replay openai-1 | wc -l)" 33
"$convctl" --data "$dir/s" replay openai-1 --from 8 --to 9 >"$dir/replay"
has "replay opens a call" "$dir/replay" "    + tool call opened call_oIHazX6yQrB8hUwl4cRilFKj get_user_details"
has "replay answers it" "$dir/replay" "    + tool call answered call_oIHazX6yQrB8hUwl4cRilFKj: "
"$convctl" --data "$dir/s" diff openai-1 1 33 >"$dir/diff"
has "diff of versions" "$dir/diff" "openai-1 from version 1 to 33: 32 events"
"$convctl" --data "$dir/s" diff openai-1 openai-2 >"$dir/diff"
has "diff of unrelated conversations" "$dir/diff" "openai-1 and openai-2 share versions 1..0 (none)"
expect "show --at" "$("$convctl" --data "$dir/s" show openai-1 --at 5 | head -1)" \
	"conversation openai-1  version 5  active"
"$convctl" --data "$dir/s" compact -o "$dir/compact" >/dev/null
expect "compact verifies" "$("$convctl" --data "$dir/compact" verify)" "5508 records checked, 0 problems"
expect "tail of the store" "$("$convctl" --data "$dir/s" tail --after-position 5500 --count 8 | wc -l)" 8

# A line's id, metadata and model.
cat >"$dir/meta.jsonl" <<'END'
{"id": "named", "model": "gpt-4o-mini", "metadata": {"user": "u1", "team": "t"}, "messages": [{"role": "developer", "content": "be kind"}, {"role": "user", "content": "hi", "name": "mia"}, {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}, {"role": "tool", "tool_call_id": "c1", "name": "f", "content": "ok"}]}
END
"$convctl" --data "$dir/m" import-openai "$dir/meta.jsonl" >/dev/null
expect "import-openai with metadata" $? 0
"$convctl" --data "$dir/m" show named >"$dir/show"
has "metadata shown" "$dir/show" "metadata  team=t"
has "metadata shown" "$dir/show" "metadata  user=u1"
"$convctl" --data "$dir/m" --json messages named >"$dir/messages"
python3 - "$dir/meta.jsonl" "$dir/messages" <<'END' || fail=1
import json, sys
want = json.loads(open(sys.argv[1]).read())["messages"]
got = json.load(open(sys.argv[2]))["messages"]
if got != want:
    print("FAIL messages round trip: got %s" % got)
    sys.exit(1)
END
"$convctl" --data "$dir/m" events named --from 4 --limit 1 >"$dir/events"
has "the line's model" "$dir/events" "gpt-4o-mini:  calls f(c1)"

# A bad line anywhere refuses the whole file, naming it, and stores nothing.
before=$("$convctl" --data "$dir/s" --json stats)
head -3 "$file" >"$dir/bad.jsonl"
echo '{"messages": [{"role": "user", "content": "hi"}], "id": "fresh"}' >>"$dir/bad.jsonl"
echo 'not json' >>"$dir/bad.jsonl"
"$convctl" --data "$dir/s" import-openai "$dir/bad.jsonl" 2>"$dir/err"
expect "bad jsonl exit" $? 1
has "bad jsonl message" "$dir/err" "convctl: import-openai: $dir/bad.jsonl:5: not JSON"
printf '{"id": "x", "messages": [{"role": "wizard", "content": "hi"}]}\n' >"$dir/bad.jsonl"
"$convctl" --data "$dir/s" import-openai "$dir/bad.jsonl" 2>"$dir/err"
expect "bad role exit" $? 1
has "bad role message" "$dir/err" "bad.jsonl:1: message 1: role \"wizard\" is not system"
printf '{"id": "x"}\n' >"$dir/bad.jsonl"
"$convctl" --data "$dir/s" import-openai "$dir/bad.jsonl" 2>"$dir/err"
expect "no messages exit" $? 1
has "no messages message" "$dir/err" "bad.jsonl:1: no \"messages\" array; nothing imported"
expect "bad files change nothing" "$("$convctl" --data "$dir/s" --json stats)" "$before"
exit $fail
