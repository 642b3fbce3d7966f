#!/usr/bin/env bash
# The failover walk-through: sends authenticated requests through HAProxy
# for DURATION seconds (default 20) while the Redis master is made
# unresponsive (SIGSTOP) after 3 seconds; the sentinels promote a replica.
# Prints the outcome of every request by status, and the old and new
# master. The old master is resumed (SIGCONT) at the end and rejoins as a
# replica.
set -euo pipefail
source "$(dirname "$0")/env.sh"
DURATION=${1:-20}

old=$(current_master)
old_port=${old##*:}
pid=$(awk -v n="redis-$old_port" '$2 == n {print $1}' "$RUN/pids")
[ -n "$pid" ] || { echo "no redis-server on port $old_port in $RUN/pids" >&2; exit 1; }
echo "master is $old (pid $pid); sending requests with testkey through 127.0.0.1:$LB_PORT for ${DURATION}s"

results="$RUN/failover-results.txt"
: >"$results"
(
	end=$((SECONDS + DURATION))
	while [ $SECONDS -lt $end ]; do
		curl -s -o /dev/null -w '%{http_code}\n' --max-time 5 -H "Authorization: testkey" \
			"http://127.0.0.1:$LB_PORT/httpbin/get" >>"$results" || echo "curl-error" >>"$results"
		sleep 0.02
	done
) &
loadpid=$!
sleep 3
echo "$(date +%T) SIGSTOP $old: the master stops answering"
kill -STOP "$pid"
trap 'kill -CONT "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 300); do
	new=$(current_master || true)
	[ -n "$new" ] && [ "$new" != "$old" ] && break
	sleep 0.1
done
echo "$(date +%T) sentinels promoted ${new:-nothing yet}"
"$GATEHOUSE" cluster --admin "http://127.0.0.1:${GW_ADMIN_PORTS[1]}" || true
wait "$loadpid"
kill -CONT "$pid"
echo
echo "requests by status (all should be 200):"
sort "$results" | uniq -c
