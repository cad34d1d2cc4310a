# Sourced by the scripts that start a daemon (serve-smoke, demo, sim-vs-daemon); needs $bin set.
# start_daemon LOG [SERVE OPTIONS...] starts `fluidfaas serve` on a free port of 127.0.0.1 (port 0: the kernel
# picks it, so two scripts never collide), reads the port from its log and waits until it is ready. Sets
# daemon_pid and url. Returns 1, printing the log, when it is not ready within 10 s.
start_daemon() {
  local log="$1"
  shift
  "$bin/fluidfaas" serve --listen 127.0.0.1:0 "$@" 2>"$log" &
  daemon_pid=$!
  url=""
  for _ in $(seq 1 100); do
    [ -n "$url" ] || url="$(grep -o 'listening on http://[0-9.]*:[0-9]*' "$log" | head -1 | sed 's/^listening on //' || true)"
    if [ -n "$url" ] && curl -sf "$url/v2/health/ready" >/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "the daemon was not ready within 10 s:"
  cat "$log"
  return 1
}
