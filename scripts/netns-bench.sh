#!/usr/bin/env bash
# Compares our pacer with the kernel's: TTFT of `sparkv run` against `sparkv serve` shaped by
# Linux tc (tbf) on a veth pair between two network namespaces, next to the same runs against
# `sparkv serve --rate` on loopback. Optional, not in CI: it needs root, iproute2 and tc.
#
#   sudo scripts/netns-bench.sh [RATE_MBIT] [BUILD_DIR]    (defaults: 8, build/release)
#
# Everything it creates (two namespaces named sparkv-nb-srv-PID and sparkv-nb-dev-PID, the veth
# pair inside them, a temporary folder, the servers) is removed on exit, also on Ctrl-C. Traffic
# stays on loopback and on the veth pair between those two namespaces.
set -euo pipefail

RATE_MBIT="${1:-8}"
BUILD_DIR="${2:-build/release}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SPARKV="$ROOT/$BUILD_DIR/src/cli/sparkv"
DATA="${SPARKV_DATA:-$ROOT/../shared/data}"
REPS=3
CHUNK=64
N_CONTEXT=448
STRATEGIES="stream sparkv-adaptive"

[[ $EUID -eq 0 ]] || { echo "netns-bench: needs root for ip netns and tc" >&2; exit 2; }
[[ -x "$SPARKV" ]] || { echo "netns-bench: no sparkv binary at $SPARKV; build it or pass BUILD_DIR" >&2; exit 2; }
[[ "$RATE_MBIT" =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "netns-bench: invalid RATE_MBIT '$RATE_MBIT'; pass a rate in Mbit/s such as 8" >&2; exit 2; }

SRV_NS="sparkv-nb-srv-$$"
DEV_NS="sparkv-nb-dev-$$"
WORK="$(mktemp -d /tmp/sparkv-netns-XXXXXX)"
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  ip netns del "$SRV_NS" 2>/dev/null || true
  ip netns del "$DEV_NS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# The model, a context of token ids (BOS, then ids spread over the vocabulary), a query, the
# store, and one profile shared by every run so that all runs plan alike.
"$SPARKV" convert-llama2c "$DATA/models/stories260K.bin" -o "$WORK/model.gguf" >/dev/null
{ printf '1'; for ((i = 1; i < N_CONTEXT; i++)); do printf ' %d' $((3 + (i * 37) % 500)); done; echo; } >"$WORK/context.txt"
echo "$(for ((i = 0; i < 16; i++)); do printf '%d ' $((5 + (i * 11) % 400)); done)" >"$WORK/query.txt"
"$SPARKV" ingest --model "$WORK/model.gguf" --tokens "$WORK/context.txt" --store "$WORK/store" \
  --chunk-tokens $CHUNK --codecs f16 >/dev/null 2>&1
"$SPARKV" profile --model "$WORK/model.gguf" --threads 1 --chunk-tokens $CHUNK --max-position 512 \
  -o "$WORK/profile.json" >/dev/null 2>&1

# Waits up to 5 s until a server responds to /healthz. $1 is a command prefix (a namespace or empty).
wait_healthy() {
  local prefix="$1" url="$2"
  for _ in $(seq 1 100); do
    if $prefix curl -sf -o /dev/null "$url/healthz"; then return 0; fi
    sleep 0.05
  done
  echo "netns-bench: no server responded at $url/healthz within 5 s" >&2
  return 1
}

# Median TTFT in seconds of REPS runs of strategy $2 against base URL $3, run with prefix $1.
median_ttft() {
  local prefix="$1" strategy="$2" url="$3" values=()
  for ((r = 0; r < REPS; r++)); do
    values+=("$($prefix timeout 120 "$SPARKV" run --model "$WORK/model.gguf" --tokens "$WORK/context.txt" \
      --query-tokens "$(cat "$WORK/query.txt")" --server "$url" --strategy "$strategy" --levels f16 \
      --chunk-tokens $CHUNK -n 1 --threads 1 --profile "$WORK/profile.json" --bandwidth-mbit "$RATE_MBIT" \
      --json 2>/dev/null | jq -r .ttft_s)")
  done
  printf '%s\n' "${values[@]}" | sort -g | sed -n "$(((REPS + 1) / 2))p"
}

# Kernel shaping: tbf on the server's side of the veth pair, so the downlink is shaped. The
# bucket contains about 2 ms of data at the rate (at least 3 packets), and packets wait up to 100 ms.
ip netns add "$SRV_NS"
ip netns add "$DEV_NS"
ip link add sparkv-nb-s type veth peer name sparkv-nb-d
ip link set sparkv-nb-s netns "$SRV_NS"
ip link set sparkv-nb-d netns "$DEV_NS"
ip -n "$SRV_NS" addr add 10.213.7.1/30 dev sparkv-nb-s
ip -n "$DEV_NS" addr add 10.213.7.2/30 dev sparkv-nb-d
ip -n "$SRV_NS" link set sparkv-nb-s up
ip -n "$DEV_NS" link set sparkv-nb-d up
ip -n "$SRV_NS" link set lo up
ip -n "$DEV_NS" link set lo up
BURST=$(python3 -c "print(max(4500, int($RATE_MBIT * 1e6 / 8 * 0.002)))")
ip netns exec "$SRV_NS" tc qdisc add dev sparkv-nb-s root tbf rate "${RATE_MBIT}mbit" burst "$BURST" latency 100ms
# Segmentation offload hands tbf packets of up to 64 KB. With ethtool installed the offloads are
# turned off so that tbf shapes packets of wire size.
ip netns exec "$SRV_NS" ethtool -K sparkv-nb-s tso off gso off gro off >/dev/null 2>&1 || true

ip netns exec "$SRV_NS" "$SPARKV" serve --store "$WORK/store" --host 10.213.7.1 --port 8080 >/dev/null 2>&1 &
PIDS+=($!)
wait_healthy "ip netns exec $DEV_NS" http://10.213.7.1:8080

# Our pacer on loopback at the same rate.
stdbuf -oL "$SPARKV" serve --store "$WORK/store" --host 127.0.0.1 --port 0 --rate "$RATE_MBIT" >"$WORK/serve.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
  PORT=$(sed -n 's|.*http://127.0.0.1:\([0-9]*\).*|\1|p' "$WORK/serve.log" | head -1)
  [[ -n "$PORT" ]] && break
  sleep 0.05
done
[[ -n "${PORT:-}" ]] || { echo "netns-bench: loopback server did not report its port" >&2; exit 1; }
wait_healthy "" "http://127.0.0.1:$PORT"

echo "stories260K, $N_CONTEXT context tokens in chunks of $CHUNK, f16, 1 thread, $RATE_MBIT Mbit/s, median of $REPS"
printf '%-16s %12s %12s %8s\n' strategy "tc tbf s" "pacer s" "ratio"
for strategy in $STRATEGIES; do
  tbf=$(median_ttft "ip netns exec $DEV_NS" "$strategy" http://10.213.7.1:8080)
  paced=$(median_ttft "" "$strategy" "http://127.0.0.1:$PORT")
  printf '%-16s %12.4f %12.4f %8.3f\n' "$strategy" "$tbf" "$paced" "$(python3 -c "print($paced / $tbf)")"
done
