#!/usr/bin/env bash
# Durable catch-up across processes: the email service goes away, users are
# created while it is down, and when it comes back the missed welcome emails
# go out. Needs a durable transport that outlives the processes:
#
#   examples/microservices/catchup.sh nats://127.0.0.1:4222
#   examples/microservices/catchup.sh redis://127.0.0.1:6379/0
set -euo pipefail
driver="${1:-nats://127.0.0.1:4222}"
cd "$(dirname "$0")/../.."

bin="$(mktemp -d)/microservices"
trap 'rm -rf "$(dirname "$bin")"; [ -n "${email:-}" ] && kill "$email" 2>/dev/null || true' EXIT
go build -o "$bin" ./examples/microservices

# Unique user names per run, so that each run's emails are its own.
run="$((RANDOM % 1000))"
users="carol-${run},dave-${run}"

echo "== 1. start the email service (it creates its durable group), then stop it"
log="$(dirname "$bin")/email.log"
"$bin" -driver "$driver" -service email_service >"$log" 2>&1 &
email=$!
for _ in $(seq 1 100); do grep -q "running until interrupted" "$log" && break; sleep 0.1; done
grep -q "running until interrupted" "$log" || { cat "$log"; echo "email service did not start"; exit 1; }
kill -TERM "$email"; wait "$email" || true; email=
echo "email service stopped"

echo "== 2. while it is away, the user service creates users"
"$bin" -driver "$driver" -service user_service -users "$users"

echo "== 3. start the email service again: the missed welcome emails go out"
"$bin" -driver "$driver" -service email_service -expect 2 -timeout 30s
echo "== caught up"
