#!/usr/bin/env bash
# Starts a gatehouse that forwards every path to $UPSTREAM on 127.0.0.1:$PORT, for
# ../shared/bench/proxybench.sh:
#   make build && ../shared/bench/proxybench.sh -- "$PWD/scripts/bench-gateway.sh"
# The access log is off, as it is for the other proxies in that script.
set -euo pipefail
: "${PORT:?}" "${UPSTREAM:?}"
dir=$(mktemp -d /tmp/gatehouse-bench.XXXX)
cat > "$dir/bench.yaml" <<YAML
services: [{name: upstream, targets: ["$UPSTREAM"]}]
routes: [{name: all, service: upstream}]
YAML
exec "$(dirname "$0")/../bin/gatehouse" serve --listen "127.0.0.1:$PORT" --admin-listen 127.0.0.1:0 \
	--data-dir "$dir" --config "$dir/bench.yaml" --access-log=false --log-level warn
