#!/usr/bin/env bash
# Starts, as local processes (no containers): Redis (a master, two
# replicas, three sentinels), MinIO, go-httpbin, three Gatehouse instances
# in synchronized mode, and HAProxy in front of them on 127.0.0.1:8080.
# Stop everything with ./down.sh.
set -euo pipefail
source "$(dirname "$0")/env.sh"

command -v redis-server >/dev/null && command -v redis-sentinel >/dev/null && command -v haproxy >/dev/null &&
	[ -x "$(minio_bin)" ] || { echo "missing redis-server, redis-sentinel, haproxy or minio: run make deps" >&2; exit 1; }
[ -e "$RUN/pids" ] && { echo "already running (see $RUN/pids); run ./down.sh first" >&2; exit 1; }
mkdir -p "$RUN"
: >"$RUN/pids"
bg() { # bg NAME CMD...: start CMD in the background, logging to run/NAME.log
	local name=$1; shift
	"$@" >"$RUN/$name.log" 2>&1 &
	echo "$! $name" >>"$RUN/pids"
}

echo "building gatehouse and go-httpbin"
(cd "$ROOT" && make -s build && go build -o bin/go-httpbin github.com/mccutchen/go-httpbin/v2/cmd/go-httpbin)

echo "starting redis: master :${REDIS_PORTS[0]}, replicas :${REDIS_PORTS[1]} :${REDIS_PORTS[2]}"
for i in 0 1 2; do
	port=${REDIS_PORTS[$i]}
	mkdir -p "$RUN/redis-$port"
	args=(--port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$RUN/redis-$port")
	[ "$i" -gt 0 ] && args+=(--replicaof 127.0.0.1 "${REDIS_PORTS[0]}")
	bg "redis-$port" redis-server "${args[@]}"
	wait_port "$port" "redis-server"
done
# Gatehouse waits for a replica to confirm each durable write (WAIT 1):
# let both replicas finish their first sync.
for port in "${REDIS_PORTS[@]:1}"; do
	for _ in $(seq 100); do
		redis-cli -p "$port" INFO replication | grep -q "master_link_status:up" && break
		sleep 0.1
	done
done

echo "starting sentinels :${SENTINEL_PORTS[*]} (quorum 2, master down after 2s)"
for port in "${SENTINEL_PORTS[@]}"; do
	cat >"$RUN/sentinel-$port.conf" <<CONF
port $port
bind 127.0.0.1
dir $RUN
sentinel monitor $MASTER_NAME 127.0.0.1 ${REDIS_PORTS[0]} 2
sentinel down-after-milliseconds $MASTER_NAME 2000
sentinel failover-timeout $MASTER_NAME 10000
sentinel parallel-syncs $MASTER_NAME 1
CONF
	bg "sentinel-$port" redis-sentinel "$RUN/sentinel-$port.conf"
	wait_port "$port" "redis-sentinel"
done

echo "starting minio :$MINIO_PORT (bucket $S3_BUCKET)"
mkdir -p "$RUN/minio"
MINIO_ROOT_USER=$S3_ACCESS_KEY MINIO_ROOT_PASSWORD=$S3_SECRET_KEY MINIO_BROWSER=off \
	bg minio "$(minio_bin)" server "$RUN/minio" --address "127.0.0.1:$MINIO_PORT" --console-address "127.0.0.1:$MINIO_CONSOLE_PORT"
wait_port "$MINIO_PORT" minio
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$MINIO_PORT/minio/health/ready" >/dev/null && break; sleep 0.1; done
# Create the bucket with a signed S3 request (curl's SigV4 support).
curl -fsS -X PUT --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
	"http://127.0.0.1:$MINIO_PORT/$S3_BUCKET" >/dev/null 2>&1 || true

echo "starting go-httpbin :$HTTPBIN_PORT"
bg httpbin "$ROOT/bin/go-httpbin" -host 127.0.0.1 -port "$HTTPBIN_PORT"
wait_port "$HTTPBIN_PORT" go-httpbin

for i in 0 1 2; do
	n=$((i + 1))
	echo "starting gatehouse gw$n: proxy :${GW_PROXY_PORTS[$i]}, admin :${GW_ADMIN_PORTS[$i]}"
	NODE_ID=gw$n bg "gw$n" "$GATEHOUSE" serve \
		--listen "127.0.0.1:${GW_PROXY_PORTS[$i]}" --admin-listen "127.0.0.1:${GW_ADMIN_PORTS[$i]}" \
		--data-dir "$RUN/gw$n" --access-log=false
	wait_port "${GW_ADMIN_PORTS[$i]}" "gatehouse gw$n"
done

echo "starting haproxy :$LB_PORT (stats on :$LB_STATS_PORT/stats)"
{
	cat <<CONF
global
  maxconn 2000
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  retries 2
  option redispatch
frontend gatehouse
  bind 127.0.0.1:$LB_PORT
  default_backend gateways
frontend stats
  bind 127.0.0.1:$LB_STATS_PORT
  stats enable
  stats uri /stats
backend gateways
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
CONF
	for i in 0 1 2; do
		echo "  server gw$((i + 1)) 127.0.0.1:${GW_PROXY_PORTS[$i]} check port ${GW_ADMIN_PORTS[$i]} inter 1s"
	done
} >"$RUN/haproxy.cfg"
bg haproxy haproxy -f "$RUN/haproxy.cfg" -db
wait_port "$LB_PORT" haproxy

echo
"$GATEHOUSE" cluster --admin "http://127.0.0.1:${GW_ADMIN_PORTS[0]}"
echo
echo "up. Next: ./bootstrap.sh, then ./failover.sh; ./down.sh stops everything."
