#!/usr/bin/env bash
# Proves both compose files on this machine, from nothing, with the contract's own scripts:
#   1. dockerkit setup (starts dockerd, provides stand-ins for the base images it cannot pull);
#   2. docker-compose.yml: up --build, wait for every container to be healthy, run the contract's
#      smoke-dev.sh with assertions, check the mails in MailHog and Flower, down -v;
#   3. docker-compose-prod.yml: the same through the gateway on port 80 with smoke-prod.sh, with
#      every worker scaled to 2 (each saga still runs once), Flower behind basic auth, down -v;
#      and its safety (scripts/compose_proof_prod.sh): it refuses to start on the unchanged
#      .env.example, then runs on generated secrets and is checked for least privilege and TLS.
# Fails loudly at the first problem (printing the containers' state and logs); prints PASSED
# only at the very end.
#
# Env: COMPOSE (default docker-compose; "docker compose" for v2), DOCKERKIT (default
# ../shared/dockerkit beside the repository), COMPOSE_PROOF_NO_KIT=1 on a host that pulls real
# images, COMPOSE_PROOF_PROJECT (default compose-proof: the project's own volumes are untouched),
# COMPOSE_PROOF_TIMEOUT (seconds to wait for health, default 300).
set -Eeuo pipefail

ROOT=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
cd "$ROOT"
read -r -a COMPOSE <<<"${COMPOSE:-docker-compose}"
PROJECT=${COMPOSE_PROOF_PROJECT:-compose-proof}
TIMEOUT=${COMPOSE_PROOF_TIMEOUT:-300}
KIT=${DOCKERKIT:-$ROOT/../shared/dockerkit}
SPEC=${CONTRACT_SPEC:-$ROOT/../shared/spec}
CHECK=(python3 "$ROOT/scripts/compose_proof_check.py")
WORK=$(mktemp -d)
FILE=""  # the compose file under test, for the exit trap
WAITING=""  # what all_healthy last reported waiting for

say() { echo "[compose-proof] $*"; }
die() { echo "[compose-proof] FAILED: $*" >&2; exit 1; }
ENV_FILE=""  # the production file's secrets
dc() { "${COMPOSE[@]}" -p "$PROJECT" ${ENV_FILE:+--env-file "$ENV_FILE"} -f "$FILE" "$@"; }
containers() { docker ps -aq --filter "label=com.docker.compose.project=$PROJECT"; }

on_exit() {
  local status=$?
  if [ -n "$FILE" ]; then
    if [ $status -ne 0 ]; then
      echo "[compose-proof] state of $FILE at the failure:" >&2
      dc ps >&2 || true
      dc logs --no-color --tail=60 >&2 || true
    fi
    say "tearing down $FILE"
    dc down -v --remove-orphans >/dev/null 2>&1 || echo "[compose-proof] WARNING: down -v failed for $FILE" >&2
  fi
  rm -rf "$WORK"
  [ $status -eq 0 ] || echo "[compose-proof] FAILED (exit $status)" >&2
}
trap on_exit EXIT

# Polls "$@" until it succeeds, at most $1 seconds; a bound, not a wait for its own sake.
poll() {
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    [ $? -ne 2 ] || die "$what: failed for good"
    [ $SECONDS -lt $deadline ] || die "$what: not true after ${limit}s"
    sleep 1
  done
}

# Every container of the project healthy, migrations exited 0; any other exit fails at once.
all_healthy() {
  local ids pending="" name service state health code
  mapfile -t ids < <(containers)
  [ ${#ids[@]} -gt 0 ] || die "no containers in project $PROJECT"
  while read -r name service state health code; do
    case "$state/$health" in
      running/healthy) ;;
      exited/*)
        [[ $service == *-migrate && $code == 0 ]] || { echo "[compose-proof] $name exited with $code" >&2; return 2; } ;;
      *) pending+=" ${name#/}($state/$health)" ;;
    esac
  done < <(docker inspect -f '{{.Name}} {{index .Config.Labels "com.docker.compose.service"}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}no-healthcheck{{end}} {{.State.ExitCode}}' "${ids[@]}")
  if [ -n "$pending" ]; then
    [ "$pending" = "$WAITING" ] || say "waiting for:$pending"
    WAITING=$pending
    return 1
  fi
}

# Runs a contract script verbatim, with a curl on PATH that appends each response's status.
run_contract() {
  local script=$1 transcript=$2
  mkdir -p "$WORK/bin"
  printf '#!/bin/sh\nexec %s -sS -w "\\n@@HTTP %%{http_code}@@\\n" "$@"\n' "$(command -v curl)" >"$WORK/bin/curl"
  chmod +x "$WORK/bin/curl"
  PATH="$WORK/bin:$PATH" bash "$script" >"$transcript"
  cat "$transcript"
  "${CHECK[@]}" contract "$transcript" || die "the contract's assertions failed on $script"
  say "contract script $(basename "$script"): all assertions passed"
}

# The checks that are polled (the inbox fills and Flower learns of workers asynchronously).
dev_mail() { curl -fsS http://127.0.0.1:8025/api/v2/messages | "${CHECK[@]}" mail; }
# In production MailHog is not published: read it from inside the network, as the README says.
prod_mail() { docker exec "$1" curl -fsS http://mailhog:8025/api/v2/messages | "${CHECK[@]}" mail; }
flower_page_lists_workers() {
  local page q
  page=$(curl -fsS "$1") || return 1
  for q in users profile emails; do grep -q "$q@" <<<"$page" || return 1; done
}
# Asks Flower to inspect the workers again (its dashboard's refresh), then reads the queues.
flower_broker_lists_queues() {
  local page q
  curl -fsS -o /dev/null "http://127.0.0.1:5555/flower/?refresh=1" && page=$(curl -fsS http://127.0.0.1:5555/flower/broker) || return 1
  for q in users profile emails; do grep -q "<td>$q</td>" <<<"$page" || return 1; done
}
flower_api_lists_workers() { curl -fsS -u "$1" "http://127.0.0.1/flower/api/workers?refresh=1" | "${CHECK[@]}" flower-workers "$2"; }

gateway_reaches_users() { [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1/v1/users/1)" = 200 ]; }

container_of() { docker ps -q --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.service=$1" | head -n1; }

# Brings $FILE up from nothing with --build and waits for health; prints the timings.
bring_up() {
  dc down -v --remove-orphans >/dev/null 2>&1 || true
  local start=$SECONDS
  dc up --build -d
  local up_done=$SECONDS
  poll "$TIMEOUT" "every container of $FILE healthy" all_healthy
  say "TIMING $FILE: up --build returned after $((up_done - start))s, all healthy after $((SECONDS - start))s"
}

# 1. Docker
command -v python3 >/dev/null || die "python3 is needed on the host for the assertions"
if [ ! -f "$SPEC/smoke-dev.sh" ] || [ ! -f "$SPEC/smoke-prod.sh" ]; then
  die "the contract's scripts are not in $SPEC (shared/ beside the repository)"
fi
if [ "${COMPOSE_PROOF_NO_KIT:-}" != 1 ]; then
  [ -x "$KIT/setup" ] || die "dockerkit not found at $KIT (shared/ beside the repository; or set DOCKERKIT)"
  sudo=(); [ "$(id -u)" = 0 ] || sudo=(sudo)
  "${sudo[@]}" "$KIT/setup" docker-compose.yml docker-compose-prod.yml || die "dockerkit setup failed: Docker could not be started"
fi
docker info >/dev/null 2>&1 || die "Docker is not running (docker info fails)"
"${COMPOSE[@]}" version >/dev/null 2>&1 || die "'${COMPOSE[*]}' does not run"
say "using $("${COMPOSE[@]}" version 2>/dev/null | head -n1)"

# 2. Development
FILE=docker-compose.yml
say "== $FILE"
bring_up
run_contract "$SPEC/smoke-dev.sh" "$WORK/dev.txt"
poll 60 "the welcome mails and the 'Hi there!' mail in MailHog (:8025)" dev_mail
say "MailHog: both welcome mails and the 'Hi there!' mail, once each"
"${CHECK[@]}" gateway http://127.0.0.1:8080 || die "gateway checks on :8080"
for url in http://127.0.0.1:5555/flower/ http://127.0.0.1:8080/flower/; do
  poll 60 "Flower at $url listing a worker of each queue" flower_page_lists_workers "$url"
done
poll 30 "Flower's broker page listing the three service queues" flower_broker_lists_queues
say "Flower: answers on :5555/flower/ and through the gateway, with the three workers and queues"
dc down -v --remove-orphans
FILE=""

# 3. Production
PROD=(env COMPOSE="${COMPOSE[*]}" PROJECT="$PROJECT" "$ROOT/scripts/compose_proof_prod.sh")
"${PROD[@]}" refuse
"${PROD[@]}" env "$WORK/prod.env" "$WORK/certs"
ENV_FILE=$WORK/prod.env
FILE=docker-compose-prod.yml
say "== $FILE"
bring_up
dc up -d --no-build --scale users-worker=2 --scale profile-worker=2 --scale emails-worker=2
poll "$TIMEOUT" "every container healthy after scaling the workers to 2" all_healthy
published=$(docker ps --filter "label=com.docker.compose.project=$PROJECT" --format '{{.Names}} {{.Ports}}' | grep -- '->' || true)
if [ "$(echo "$published" | grep -c .)" != 1 ] || [[ $published != *gateway*:80-\>80/tcp* ]]; then
  die "only the gateway may publish a port (port 80); published: $published"
fi
say "only the gateway is published: $published"
run_contract "$SPEC/smoke-prod.sh" "$WORK/prod.txt"
gateway=$(container_of gateway)
poll 60 "the welcome mails and the 'Hi there!' mail in MailHog (read from inside the network)" prod_mail "$gateway"
"${CHECK[@]}" gateway http://127.0.0.1 || die "gateway checks on :80"
say "MailHog: both welcome mails and the 'Hi there!' mail, once each, with two workers on every queue"
dc up -d --no-deps --force-recreate users-api
poll "$TIMEOUT" "every container healthy after recreating users-api" all_healthy
poll 30 "the gateway reaching the recreated users-api" gateway_reaches_users
say "the gateway follows a recreated API container"
auth=$(docker exec "$(container_of flower)" printenv FLOWER_BASIC_AUTH)
status=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1/flower/)
[ "$status" = 401 ] || die "Flower through the gateway without credentials answered $status, expected 401"
[ "$(curl -s -o /dev/null -w '%{http_code}' -u "$auth" http://127.0.0.1/flower/)" = 200 ] || die "Flower with credentials did not answer 200"
poll 60 "Flower's API listing two workers on each queue" flower_api_lists_workers "$auth" 2
say "Flower: 401 without credentials, 200 with them, six workers seen through the gateway"
ENV_FILE="$ENV_FILE" "${PROD[@]}" check
dc down -v --remove-orphans
FILE=""

say "PASSED: docker-compose.yml and docker-compose-prod.yml, built and run from nothing with ${COMPOSE[*]}"
