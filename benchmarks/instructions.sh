#!/usr/bin/env bash
# User-space instructions per request, counted by valgrind's callgrind: the gateway against one
# nginx proxy hop, both in front of the same nginx upstream. Unlike CPU time, these counts
# repeat to within a few tenths of a percent from run to run, whatever else the machine is
# doing, so they show what a change to the hot path did. They leave out the kernel's part
# (about half of the CPU time per request on loopback, see BENCHMARKS.md), which a change to
# our code rarely moves. Rows: the nginx hop, the plain route, a route whose primary answers
# every request with a 503 (each answer a failover), and a 200-chunk stream.
#
# Needs: valgrind, nginx, wrk, curl (Debian: apt-get install valgrind nginx-light wrk curl).
# Usage: benchmarks/instructions.sh [GATEWAY_BIN] [SECONDS]
#   CACHE=1 also simulates the caches and branch predictor (callgrind --cache-sim --branch-sim)
#   and prints, per request, first-level instruction and data cache misses and mispredicted
#   branches: what an instruction count alone does not show. The simulation sees user space
#   only (the kernel's own cache traffic between requests is not in it), so read the figures
#   as a comparison between the rows, not as what the hardware does.
#   GATEWAY_BIN defaults to target/release/switchyard (build it first:
#   cargo build --release -p switchyard-gateway). Under valgrind everything runs ~50x slower,
#   so a few seconds give thousands of requests.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/switchyard}
secs=${2:-5}
for tool in valgrind nginx wrk curl callgrind_control; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done
dir=$(mktemp -d /tmp/switchyard-instructions.XXXXXX)
# nginx workers run as nobody and serve the stream file from here.
chmod 755 "$dir"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# The bench upstream's canned answer (xtask/src/bench/upstream.rs) and a 200-chunk stream.
answer='{"id":"chatcmpl-bench0001","object":"chat.completion","created":1730000000,"model":"bench-model","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! I am a benchmark upstream answering as fast as it can.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":14,"total_tokens":26},"system_fingerprint":"fp_bench"}'
python3 - "$dir/stream.sse" <<'EOF'
import sys
head = '{"id":"chatcmpl-bench0002","object":"chat.completion.chunk","created":1730000000,"model":"bench-model","system_fingerprint":"fp_bench","choices":[{"index":0,'
parts = ['data: ' + head + '"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}\n\n']
parts += ['data: ' + head + '"delta":{"content":"tok%d "},"logprobs":null,"finish_reason":null}]}\n\n' % i for i in range(200)]
parts += ['data: ' + head + '"delta":{},"logprobs":null,"finish_reason":"stop"}]}\n\n', 'data: [DONE]\n\n']
open(sys.argv[1], 'w').write(''.join(parts))
EOF

cat > "$dir/upstream.conf" <<EOF
worker_processes 1;
daemon off;
error_log $dir/upstream-error.log;
pid $dir/upstream.pid;
events { worker_connections 1024; }
http {
  access_log off;
  server {
    listen 127.0.0.1:18181;
    keepalive_requests 100000000;
    location / { default_type application/json; return 200 '$answer'; }
  }
  server {
    listen 127.0.0.1:18182;
    keepalive_requests 100000000;
    # The static module answers POST with 405; this turns it into the file.
    location / { root $dir; default_type text/event-stream; try_files /stream.sse =404; error_page 405 =200 \$uri; }
  }
  server {
    listen 127.0.0.1:18185;
    keepalive_requests 100000000;
    # A primary that is down: every request gets OpenAI's 503, so every answer is a failover.
    location / { default_type application/json; return 503 '{"error":{"message":"overloaded","type":"server_error","param":null,"code":null}}'; }
  }
}
EOF
cat > "$dir/proxy.conf" <<EOF
worker_processes 1;
master_process off;
daemon off;
error_log $dir/proxy-error.log;
pid $dir/proxy.pid;
events { worker_connections 1024; }
http {
  access_log off;
  upstream up { server 127.0.0.1:18181; keepalive 64; }
  server {
    listen 127.0.0.1:18183;
    keepalive_requests 100000000;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; }
  }
}
EOF
cat > "$dir/gateway.toml" <<EOF
[server]
listen = "127.0.0.1:18184"
workers = 1
[breaker]
failure_threshold = 1000000000
[models.plain]
targets = [{ name = "upstream", provider = "openai", base_url = "http://127.0.0.1:18181/v1", api_key = "sk-bench", model = "bench-model" }]
[models.stream]
targets = [{ name = "sse", provider = "openai", base_url = "http://127.0.0.1:18182/v1", api_key = "sk-bench", model = "bench-model" }]
[models.failover]
targets = [
  { name = "down", provider = "openai", base_url = "http://127.0.0.1:18185/v1", api_key = "sk-bench", model = "bench-model" },
  { name = "upstream", provider = "openai", base_url = "http://127.0.0.1:18181/v1", api_key = "sk-bench", model = "bench-model" },
]
EOF
for model in plain stream failover; do
  stream=false; [ $model = stream ] && stream=true
  cat > "$dir/$model.lua" <<EOF
wrk.method = "POST"
wrk.body = '{"model":"$model","stream":$stream,"messages":[{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":32}'
wrk.headers["Content-Type"] = "application/json"
EOF
done

nginx -c "$dir/upstream.conf" -p "$dir" &
pids+=($!)
sleep 0.5

# count NAME URL LUA COMMAND...: starts COMMAND under callgrind with instrumentation off,
# warms it up, counts one wrk run at one connection, prints instructions per request.
count() {
  local name=$1 url=$2 lua=$3
  shift 3
  local out="$dir/${name// /-}.callgrind"
  local sim=()
  [ -n "${CACHE:-}" ] && sim=(--cache-sim=yes --branch-sim=yes)
  valgrind --tool=callgrind "${sim[@]}" --instr-atstart=no --callgrind-out-file="$out" "$@" \
    >"$dir/${name// /-}.log" 2>&1 &
  local vp=$!
  pids+=($vp)
  for _ in $(seq 1 100); do
    curl -s -o /dev/null -X POST "$url" && break
    sleep 0.3
  done
  wrk -t1 -c1 -d2 -s "$lua" "$url" >/dev/null
  callgrind_control -i on "$vp" >/dev/null 2>&1
  local report
  report=$(wrk -t1 -c1 -d"$secs" -s "$lua" "$url")
  callgrind_control -i off "$vp" >/dev/null 2>&1
  callgrind_control -d "$vp" >/dev/null 2>&1
  # Counted and written: no need for a graceful stop (nginx under valgrind takes its time).
  kill -9 "$vp"
  wait "$vp" 2>/dev/null || true
  local n ir
  n=$(echo "$report" | awk '/requests in/ {print $1}')
  if echo "$report" | grep -q "Non-2xx"; then
    echo "$name: some answers were not 2xx:" >&2
    echo "$report" >&2
    exit 1
  fi
  # The busiest of the profile's parts (the worker thread's); its counts follow the
  # `events:` line's order: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw Bc Bcm Bi Bim with CACHE=1.
  local totals
  totals=$(cat "$out"* | awk '/^(summary|totals):/' | sort -k2 -n | tail -1)
  if [ -n "${CACHE:-}" ]; then
    echo "$totals" | awk -v name="$name" -v n="$n" '{
      printf "%-28s %9d requests %8d instructions %6d I1 misses %5d D1 misses %5d mispredicts /request\n",
        name, n, $2 / n, $5 / n, ($6 + $7) / n, ($12 + $14) / n }'
  else
    echo "$totals" | awk -v name="$name" -v n="$n" '{
      printf "%-28s %9d requests %12d instructions/request\n", name, n, $2 / n }'
  fi
}

count "nginx hop" "http://127.0.0.1:18183/v1/chat/completions" "$dir/plain.lua" \
  nginx -c "$dir/proxy.conf" -p "$dir"
count "switchyard plain" "http://127.0.0.1:18184/v1/chat/completions" "$dir/plain.lua" \
  "$bin" serve --config "$dir/gateway.toml"
count "switchyard failover" "http://127.0.0.1:18184/v1/chat/completions" "$dir/failover.lua" \
  "$bin" serve --config "$dir/gateway.toml"
count "switchyard 200-chunk stream" "http://127.0.0.1:18184/v1/chat/completions" \
  "$dir/stream.lua" "$bin" serve --config "$dir/gateway.toml"
[ -n "${KEEP:-}" ] || rm -rf "$dir"
