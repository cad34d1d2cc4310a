# Sourced by the scripts that start servers on loopback: free_port (bench-edge too), and for the cluster scripts
# (cluster-demo, cluster-vs-sim, async-demo) cluster_script, start_nats and healthy_nodes.

# cluster_script NAME: the frame of a cluster script: nats-server must be installed; $work is a fresh directory,
# removed at exit; every process whose pid is appended to the array `pids` is stopped at exit (stop_all stops them
# sooner); fail MESSAGE prints it with the tails of $work's logs and exits 1.
cluster_script() {
  script_name="$1"
  command -v nats-server >/dev/null || { echo "$script_name: nats-server missing (scripts/install-deps.sh)"; exit 1; }
  work="$(mktemp -d)"
  pids=()
  trap 'stop_all; rm -rf "$work"' EXIT
}
stop_all() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
fail() { echo "$script_name: $*"; tail -n 20 "$work"/*.log; exit 1; }

# A port of 127.0.0.1 free now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_nats PORT STORE LOG [SERVER OPTIONS...]: nats-server with JetStream on 127.0.0.1:PORT, its store in STORE,
# its output appended to LOG; sets nats_pid and returns once it accepts connections (at most 5 s).
start_nats() {
  local port="$1" store="$2" log="$3"
  shift 3
  nats-server -js -sd "$store" -a 127.0.0.1 -p "$port" "$@" >>"$log" 2>&1 &
  nats_pid=$!
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0; sleep 0.1; done
  echo "nats-server did not start on port $port:"
  tail -n 20 "$log"
  return 1
}

# healthy_nodes GATEWAY_URL: the nodes the gateway holds healthy now (0 when it does not answer).
healthy_nodes() {
  curl -sf "$1/v1/cluster" 2>/dev/null |
    python3 -c 'import json,sys; print(sum(n["healthy"] for n in json.load(sys.stdin)["nodes"]))' 2>/dev/null || echo 0
}
