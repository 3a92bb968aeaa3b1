#!/bin/sh
# Runs conf/demo.conf in the foreground (make run).  Ctrl-C stops nginx
# gracefully: open segments are sealed and shipped to var/archive first.

set -eu

nginx=${1:-/usr/sbin/nginx}
top=$(cd "$(dirname "$0")/.." && pwd)

cd "$top"
mkdir -p var/archive var/run var/log var/tmp

# started as root, nginx runs its workers as "nobody": they write the archive
if [ "$(id -u)" = 0 ]; then
    chown nobody var/archive
fi

"$nginx" -p "$top/" -c conf/demo.conf -t -q -e stderr

cat <<EOT
reductrai demo on http://127.0.0.1:8080 (Ctrl-C to stop)
  archive: $top/var/archive   health: /health   metrics: /metrics
EOT

trap 'kill -QUIT "$pid" 2>/dev/null; wait "$pid"' INT TERM
"$nginx" -p "$top/" -c conf/demo.conf -e stderr -g 'daemon off;' &
pid=$!
wait "$pid"
