#!/usr/bin/env bash
# nginx under hainit as PID 1 with --stop-signal QUIT: a slow download that is in flight when the
# shutdown begins still completes, and nginx exits 0. Needs nginx (Debian: nginx-light) and root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
hainit="$here/../../bin/hainit"
dir=/tmp/hainit-nginx-demo
mkdir -p "$dir"
head -c 3000000 /dev/zero > "$dir/big.bin"   # 3 MB at 1 MB/s: a 3 s download

unshare --pid --fork --kill-child --mount-proc -- "$hainit" --shutdown-delay 500ms --stop-signal QUIT --grace-period 10s \
  -- nginx -c "$here/nginx.conf" &
wrapper=$!
for _ in $(seq 50); do curl -fsS -o /dev/null http://127.0.0.1:18080/ 2>/dev/null && break; sleep 0.1; done || true
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/18080) 2>/dev/null && break; sleep 0.1; done
init=$(cat /proc/$wrapper/task/$wrapper/children)
curl -sS -o "$dir/got.bin" -w 'download: HTTP %{http_code}, %{size_download} bytes in %{time_total} s\n' http://127.0.0.1:18080/big.bin &
download=$!
sleep 1
echo "demo: SIGTERM to hainit (pid $init on the host) while the download is in flight"
kill -TERM "$init"
wait "$download"
set +e
wait "$wrapper"
echo "demo: hainit exited with $?"
cmp -s "$dir/big.bin" "$dir/got.bin" && echo "demo: the download is complete and intact"
rm -rf "$dir"
