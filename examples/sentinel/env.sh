# Shared settings of the Sentinel example; sourced by the other scripts.
# Every process listens on 127.0.0.1 only.
EX_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$EX_DIR/../.." && pwd)"
RUN="$EX_DIR/run"          # logs, data, pid files (git-ignored)
GATEHOUSE="$ROOT/bin/gatehouse"

REDIS_PORTS=(6380 6381 6382)        # master, replica, replica
SENTINEL_PORTS=(26380 26381 26382)  # quorum 2
MASTER_NAME=mymaster
REDIS_DB=2
MINIO_PORT=9000
MINIO_CONSOLE_PORT=9001
HTTPBIN_PORT=8090
GW_PROXY_PORTS=(8081 8082 8083)
GW_ADMIN_PORTS=(9871 9872 9873)
LB_PORT=8080                         # HAProxy: the one address clients use
LB_STATS_PORT=8404

S3_ACCESS_KEY=gatehouse-example
S3_SECRET_KEY=gatehouse-example-secret
S3_BUCKET=gatehouse
S3_REGION=us-east-1

sentinels() { local IFS=,; echo "${SENTINEL_PORTS[*]/#/127.0.0.1:}"; }
SYNC_REDIS_URL="redis+sentinel://$(sentinels)/$MASTER_NAME/$REDIS_DB"

export SYNC_REDIS_URL
export SYNC_S3_HOST="http://127.0.0.1:$MINIO_PORT"
export SYNC_S3_REGION="$S3_REGION"
export SYNC_S3_ACCESS_KEY="$S3_ACCESS_KEY"
export SYNC_S3_SECRET_KEY="$S3_SECRET_KEY"
export SYNC_S3_BUCKET="$S3_BUCKET"
export SYNC_S3_PATH_STYLE=true

# minio: on PATH or where `make deps` installs it.
minio_bin() { command -v minio || echo "$(go env GOPATH)/bin/minio"; }

# wait_port PORT NAME: until something listens on 127.0.0.1:PORT (15s).
wait_port() {
	for _ in $(seq 150); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "$2 did not start listening on 127.0.0.1:$1; see $RUN/*.log" >&2
	return 1
}

# current_master: host:port of the master according to the sentinels.
current_master() {
	redis-cli -p "${SENTINEL_PORTS[0]}" SENTINEL get-master-addr-by-name "$MASTER_NAME" | paste -sd: -
}
