#!/usr/bin/env bash
# Durable captures against a bare net/http handler, side by side, with wrk
# (Debian's package): 50 connections, 1 KiB JSON POSTs, loopback only.
# Usage: bash inbox/testdata/wrk.sh [seconds]   (from the repository root)
set -euo pipefail
secs=${1:-10}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
go build -o "$tmp/callbin" ./cmd/callbin
go build -o "$tmp/bare" ./inbox/testdata/bare
"$tmp/bare" 127.0.0.1:18099 & 
"$tmp/callbin" -http 127.0.0.1:18098 -smtp 127.0.0.1:0 -data "$tmp/data" 2>"$tmp/log" &
sleep 1
lua=inbox/testdata/post-1k.lua
for round in 1 2; do
  echo "== round $round: bare net/http"
  wrk -t2 -c50 -d"${secs}s" --latency -s "$lua" http://127.0.0.1:18099/ | grep -E 'Requests/sec|99%|50%'
  echo "== round $round: callbin capture (durable)"
  wrk -t2 -c50 -d"${secs}s" --latency -s "$lua" http://127.0.0.1:18098/b/wrk | grep -E 'Requests/sec|99%|50%'
done
echo "== stored:"
curl -s http://127.0.0.1:18098/api/v1/bins/wrk | grep -o '"capture_count":[0-9]*'
