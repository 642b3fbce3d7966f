#!/usr/bin/env bash
# Creates the test API (go-httpbin behind /httpbin/, API key required) and
# the key "testkey", through gw1, and waits until every instance serves
# them. Then calls the API through HAProxy.
set -euo pipefail
source "$(dirname "$0")/env.sh"
export GATEHOUSE_ADMIN="http://127.0.0.1:${GW_ADMIN_PORTS[0]}"

cat >"$RUN/api.yaml" <<YAML
services:
  - name: httpbin
    targets: [{url: "http://127.0.0.1:$HTTPBIN_PORT"}]
routes:
  - name: httpbin
    service: httpbin
    paths: ["/httpbin"]
    strip_prefix: true
    auth: {api_key: true}
YAML
"$GATEHOUSE" apply -f "$RUN/api.yaml" --wait
# The Tyk example's key: sent as "Authorization: testkey".
if ! "$GATEHOUSE" keys list | grep -qw example-testkey; then
	echo -n testkey | "$GATEHOUSE" keys create --name example-testkey --import-stdin
fi
sleep 0.5
echo
echo "GET http://127.0.0.1:$LB_PORT/httpbin/get with Authorization: testkey"
curl -fsS -H "Authorization: testkey" "http://127.0.0.1:$LB_PORT/httpbin/get" | head -c 400
echo
echo "without a key:"
curl -sS "http://127.0.0.1:$LB_PORT/httpbin/get"
echo
