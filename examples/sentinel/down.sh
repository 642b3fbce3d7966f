#!/usr/bin/env bash
# Stops everything up.sh started (and resumes a paused master first).
set -uo pipefail
source "$(dirname "$0")/env.sh"
[ -e "$RUN/pids" ] || { echo "nothing running"; exit 0; }
while read -r pid name; do
	kill -CONT "$pid" 2>/dev/null
	kill "$pid" 2>/dev/null && echo "stopped $name"
done <"$RUN/pids"
rm -f "$RUN/pids"
echo "logs and data are kept in $RUN; rm -rf it to start afresh"
