#!/usr/bin/env bash
# Installs what the test suite needs when it is missing. Idempotent; safe to
# run on a fresh Debian machine as root (or with sudo available).
set -euo pipefail

need_apt=()
# The single-instance suite needs only Go and the module proxy. Later modes
# add their servers here (redis-server, redis-sentinel, postgresql, etcd-server,
# haproxy) so that `make test` keeps working on a fresh machine.
for pkg in "$@"; do
	dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

command -v go >/dev/null || { echo "install-deps: Go is required (https://go.dev/dl/), not found on PATH" >&2; exit 1; }
go mod download
