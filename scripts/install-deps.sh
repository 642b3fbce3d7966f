#!/usr/bin/env bash
# Installs what the test suite needs when it is missing. Idempotent and quiet
# when there is nothing to do; safe to run on a fresh Debian machine as root
# (or with sudo available). Extra Debian package names may be passed as
# arguments.
set -euo pipefail

need_apt=()

# need_cmd CMD PKG: install Debian package PKG when command CMD is missing.
# The test helpers start these servers themselves, on free loopback ports;
# whatever system service the package starts is not used.
need_cmd() {
	command -v "$1" >/dev/null 2>&1 || need_apt+=("$2")
}

# Later modes add their servers here (postgresql, etcd-server) so that
# `make test` keeps working on a fresh machine.
need_cmd redis-server redis-server
need_cmd redis-sentinel redis-sentinel
need_cmd haproxy haproxy

for pkg in "$@"; do
	dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done

if ((${#need_apt[@]})); then
	SUDO=""
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null || {
			echo "install-deps: need root or sudo to install: ${need_apt[*]}" >&2
			exit 1
		}
		SUDO=sudo
	fi
	echo "install-deps: installing ${need_apt[*]}" >&2
	log=$(mktemp)
	trap 'rm -f "$log"' EXIT
	if ! { $SUDO apt-get update -qq &&
		$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"; } >"$log" 2>&1; then
		cat "$log" >&2
		echo "install-deps: apt-get failed installing ${need_apt[*]}" >&2
		exit 1
	fi
fi

command -v go >/dev/null || { echo "install-deps: Go is required (https://go.dev/dl/), not found on PATH" >&2; exit 1; }
go mod download

# Go-built servers the tests start, pinned, installed into $(go env GOPATH)/bin
# (the test helpers look there as well as on PATH). MinIO publishes no
# semver tags: the pin is a pseudo-version of its main branch. Building it
# takes a few minutes, once.
gobin="$(go env GOPATH)/bin"
need_go() { # need_go CMD MODULE@VERSION
	command -v "$1" >/dev/null 2>&1 || [ -x "$gobin/$1" ] && return 0
	echo "install-deps: go install $2" >&2
	GOBIN="$gobin" go install "$2"
}
need_go minio github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
