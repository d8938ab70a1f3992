#!/bin/sh
# HTTPS: convstored with --tls-cert/--tls-key (a server certificate signed by a CA the test
# makes with openssl) answers curl that trusts that CA, over TLS only: an append and its read
# back, a plain-HTTP request to the TLS port gets no HTTP answer, a client that does not trust
# the CA refuses it, and bad TLS flags are clear startup errors. Skipped (77) without openssl
# or curl. $1 is the convstored binary.
set -u
convstored=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
command -v openssl >/dev/null && command -v curl >/dev/null || { echo "no openssl or curl"; exit 77; }
dir=$(mktemp -d /tmp/convstore-tls.XXXXXX) || exit 1
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid"; rm -rf "$dir"; }
trap cleanup EXIT
fail=0
expect() { # expect WHAT GOT WANT
	if [ "$2" != "$3" ]; then
		echo "FAIL $1: got [$2], want [$3]"
		fail=1
	fi
}
cd "$dir" || exit 1
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
	-subj "/CN=convstore test CA" 2>/dev/null || exit 1
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
	-subj "/CN=127.0.0.1" 2>/dev/null || exit 1
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
	-days 2 -extfile ext 2>/dev/null || exit 1
openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 2 \
	-subj "/CN=someone else" 2>/dev/null || exit 1

"$convstored" --port 0 --data "$dir/data" --no-sync --tls-cert server.pem --tls-key server.key \
	>out 2>log &
pid=$!
for _ in $(seq 50); do grep -q listening out 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' out)
[ -n "$port" ] || { echo "FAIL convstored did not start: $(cat log)"; exit 1; }
U=https://127.0.0.1:$port

out=$(curl -sS --cacert ca.pem "$U/healthz")
expect "healthz over TLS" "$out" '{"status":"ok"}'
out=$(curl -sS --cacert ca.pem -X POST "$U/v1/conversations/t1/events" \
	-H 'Content-Type: application/json' \
	-d '{"events":[{"message":{"role":"user","content":"over tls"}}]}' -o /dev/null -w '%{http_code}')
expect "append over TLS" "$out" 201
out=$(curl -sS --cacert ca.pem "$U/v1/conversations/t1/messages")
expect "messages over TLS" "$out" '{"messages":[{"role":"user","content":"over tls"}]}'
out=$(curl -sS --cacert ca.pem -o /dev/null -w '%{ssl_verify_result} %{scheme}' "$U/healthz")
expect "verified" "$out" "0 HTTPS"

curl -s --cacert other.pem "$U/healthz" >/dev/null
expect "a client that does not trust the CA refuses" $? 60
out=$(curl -s --max-time 3 "http://127.0.0.1:$port/healthz")
expect "plain HTTP to the TLS port gets no HTTP answer" "$(printf '%s' "$out" | grep -c status)" 0
out=$(curl -sS --cacert ca.pem "$U/healthz")
expect "still serving" "$out" '{"status":"ok"}'

kill "$pid"
wait "$pid"
expect "drains and exits 0" $? 0
pid=

"$convstored" --port 0 --data "$dir/d2" --tls-cert server.pem 2>err
expect "cert without key exit" $? 2
grep -q -- "--tls-cert and --tls-key go together" err || { echo "FAIL message: $(cat err)"; fail=1; }
"$convstored" --port 0 --data "$dir/d2" --tls-cert server.pem --tls-key nothing.key 2>err
expect "missing key exit" $? 1
grep -q "nothing.key: No such file or directory" err || { echo "FAIL message: $(cat err)"; fail=1; }
"$convstored" --port 0 --data "$dir/d2" --tls-cert ext --tls-key server.key 2>err
expect "not a PEM file exit" $? 1
grep -q "ext: not a PEM file" err || { echo "FAIL message: $(cat err)"; fail=1; }
[ $fail -eq 0 ] && echo "TLS: ok"
exit $fail
