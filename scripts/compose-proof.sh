#!/usr/bin/env bash
# Proves both compose files, from nothing, wherever Docker runs:
#   1. Docker and the images: the real base images, pulled (the default wherever a registry
#      answers), or dockerkit's local stand-ins (asked for, or when pulling is impossible here);
#   2. docker-compose.yml: up --build, wait for every container to be healthy, run
#      scripts/smoke.sh dev (the contract's calls with assertions, and the mails in MailHog),
#      check the gateway, Flower (its port's / too), the API docs at /docs/, and Prometheus (the
#      monitoring profile) scraping every process with every target up, down -v;
#   3. docker-compose-prod.yml, with generated secrets: the same through the gateway on port 80
#      with scripts/smoke.sh prod (the inbox read from inside the network), with every worker
#      scaled to 2 (each saga still runs once), Flower behind basic auth, no docs and no metrics
#      through the gateway, Prometheus on the loopback scraping every replica, down -v; and its safety
#      (scripts/compose_proof_prod.sh): it refuses to start on the unchanged .env.example, then
#      runs on secrets from scripts/generate-secrets.sh and is checked for read-only Flower,
#      least privilege, forged tokens, X-Forwarded-For and HTTPS.
# Fails loudly at the first problem (printing the containers' state and logs); prints PASSED
# only at the very end.
#
# Env:
#   COMPOSE_PROOF_IMAGES  auto (default): real where `docker pull` works, else the stand-ins;
#                         real: pull the real images or fail; standin: dockerkit's stand-ins
#   DOCKERKIT             a dockerkit directory (local stand-ins for the base images, built from
#                         Debian packages, for machines that cannot pull; its setup also starts
#                         Docker there): needed only for the stand-ins; .ci/run passes it
#   COMPOSE               the compose command; default `docker compose` (v2) if it runs, else
#                         `docker-compose` (v1)
#   COMPOSE_PROOF_PROJECT (default compose-proof: the project's own volumes are untouched),
#   COMPOSE_PROOF_TIMEOUT (seconds to wait for health, default 300),
#   COMPOSE_PROOF_PULL_TIMEOUT (seconds for each `docker pull`, default 300).
set -Eeuo pipefail

ROOT=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
cd "$ROOT"
PROJECT=${COMPOSE_PROOF_PROJECT:-compose-proof}
TIMEOUT=${COMPOSE_PROOF_TIMEOUT:-300}
PULL_TIMEOUT=${COMPOSE_PROOF_PULL_TIMEOUT:-300}
IMAGES=${COMPOSE_PROOF_IMAGES:-auto}
KIT=${DOCKERKIT:-}
FILES=(docker-compose.yml docker-compose-prod.yml)
CHECK=(python3 "$ROOT/scripts/compose_proof_check.py")
COMPOSE=()
WORK=$(mktemp -d)
FILE=""  # the compose file under test, for the exit trap
WAITING=""  # what all_healthy last reported waiting for

say() { echo "[compose-proof] $*"; }
die() { echo "[compose-proof] FAILED: $*" >&2; exit 1; }
ENV_FILE=""  # the production file's secrets
dc() { "${COMPOSE[@]}" -p "$PROJECT" ${ENV_FILE:+--env-file "$ENV_FILE"} -f "$FILE" "$@"; }
containers() { docker ps -aq --filter "label=com.docker.compose.project=$PROJECT"; }
# Compose v1's down stops at the first network it cannot remove, before the volumes: a run that
# starts on an earlier run's database would meet its old passwords. Volumes go whatever happened.
remove_volumes() {
  docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | xargs -r docker volume rm -f >/dev/null 2>&1 || true
}

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
    remove_volumes
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

flower_page_lists_workers() {
  local page q
  page=$(curl -fsS "$1") || return 1
  for q in users profile emails mail; do grep -q "$q@" <<<"$page" || return 1; done
}
# Asks Flower to inspect the workers again (its dashboard's refresh), then reads the queues.
flower_broker_lists_queues() {
  local page q
  curl -fsS -o /dev/null "http://127.0.0.1:5555/flower/?refresh=1" && page=$(curl -fsS http://127.0.0.1:5555/flower/broker) || return 1
  for q in users profile emails mail; do grep -q "<td>$q</td>" <<<"$page" || return 1; done
}
flower_api_lists_workers() { curl -fsS -u "$1" "http://127.0.0.1/flower/api/workers?refresh=1" | "${CHECK[@]}" flower-workers "$2"; }

# Prometheus (the monitoring profile, on in this run) scraping $1 targets, all up; a query above 0.
prometheus_targets_up() { curl -fsS http://127.0.0.1:9090/api/v1/targets | "${CHECK[@]}" prometheus-targets "$1"; }
prometheus_positive() { curl -fsS -G http://127.0.0.1:9090/api/v1/query --data-urlencode "query=$1" | "${CHECK[@]}" prometheus-positive; }

gateway_reaches_users() { [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1/v1/users/1)" = 200 ]; }

container_of() { docker ps -q --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.service=$1" | head -n1; }

# Brings $FILE up from nothing with --build and waits for health; prints the timings.
bring_up() {
  dc down -v --remove-orphans >/dev/null 2>&1 || true
  remove_volumes
  local start=$SECONDS
  dc up --build -d
  local up_done=$SECONDS
  poll "$TIMEOUT" "every container of $FILE healthy" all_healthy
  say "TIMING $FILE: up --build returned after $((up_done - start))s, all healthy after $((SECONDS - start))s"
}

# 1. Docker, the compose command and the images

kit_present() { [ -n "$KIT" ] && [ -x "$KIT/setup" ]; }
run_kit() {
  local sudo=(); [ "$(id -u)" = 0 ] || sudo=(sudo)
  "${sudo[@]}" "$KIT/setup" "${FILES[@]}" || die "dockerkit setup ($KIT/setup) failed"
}
# The images the project does not build: tagged `image:` lines and Dockerfiles' FROM lines.
base_images() {
  { sed -n 's/^ *image: *\([^ #]*:[^ #]*\).*/\1/p' "${FILES[@]}"
    sed -n 's/^FROM \([^ ]*:[^ ]*\).*/\1/p' docker/*.Dockerfile nginx/Dockerfile; } | sort -u
}
pull_real_images() {
  local image
  for image in $(base_images); do
    say "docker pull $image"
    timeout "$PULL_TIMEOUT" docker pull -q "$image" >/dev/null || return 1
  done
}

command -v python3 >/dev/null || die "python3 is needed on the host for the assertions"
command -v curl >/dev/null || die "curl is needed on the host for the smoke script"
case "$IMAGES" in auto|real|standin) ;; *) die "COMPOSE_PROOF_IMAGES=$IMAGES: use auto, real or standin" ;; esac
if ! docker info >/dev/null 2>&1; then
  if [ "$IMAGES" = real ] || ! kit_present; then die "Docker is not running (docker info fails): start it first"; fi
  say "Docker is not running: starting it with dockerkit ($KIT)"
  run_kit
  docker info >/dev/null 2>&1 || die "Docker is still not running after dockerkit setup"
fi

if [ -n "${COMPOSE:-}" ]; then
  read -r -a COMPOSE <<<"$COMPOSE"
elif docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null; then
  COMPOSE=(docker-compose)
else
  die "neither 'docker compose' (Compose v2) nor 'docker-compose' (v1) runs; install Compose v2"
fi
"${COMPOSE[@]}" version >/dev/null 2>&1 || die "'${COMPOSE[*]}' does not run"
say "using ${COMPOSE[*]}: $("${COMPOSE[@]}" version 2>/dev/null | head -n1)"

if [ "$IMAGES" != standin ]; then
  probe=$(base_images | head -n1)
  if pull_real_images; then
    IMAGES=real
    say "images: the real ones, pulled: $(base_images | tr '\n' ' ')"
  elif [ "$IMAGES" = real ]; then
    die "COMPOSE_PROOF_IMAGES=real, but pulling the images failed (above)"
  else
    say "pulling images is impossible here (docker pull failed, above; first tried: $probe)"
    kit_present || die "docker pull fails (above): give this machine access to the registry, or set DOCKERKIT to a dockerkit for local stand-ins"
    IMAGES=standin
  fi
fi
if [ "$IMAGES" = standin ]; then
  kit_present || die "COMPOSE_PROOF_IMAGES=standin needs dockerkit: set DOCKERKIT to its directory"
  say "images: dockerkit's local stand-ins ($KIT): Debian's Python, PostgreSQL, Redis, nginx, a MailHog subset"
  run_kit
  # The stand-ins are local images: the classic builder uses them without asking a registry.
  export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0 COMPOSE_BAKE=false
fi

# Prometheus too (the monitoring profile), in both files.
export COMPOSE_PROFILES=monitoring

# 2. Development
FILE=docker-compose.yml
say "== $FILE"
bring_up
scripts/smoke.sh dev || die "scripts/smoke.sh dev"
"${CHECK[@]}" gateway http://127.0.0.1:8080 || die "gateway checks on :8080"
for url in http://127.0.0.1:5555/flower/ http://127.0.0.1:8080/flower/; do
  poll 60 "Flower at $url listing a worker of each queue" flower_page_lists_workers "$url"
done
poll 30 "Flower's broker page listing the four queues" flower_broker_lists_queues
say "Flower: answers on :5555/flower/ and through the gateway, with the four workers and queues"
flower_root=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' http://127.0.0.1:5555/)
[ "$flower_root" = "302 http://127.0.0.1:5555/flower/" ] || die "Flower's :5555/ answered $flower_root, not a redirect to /flower/"
"${CHECK[@]}" docs http://127.0.0.1:8080 on || die "the API docs at :8080/docs/"
say "Flower's :5555/ opens on Flower; the three APIs' docs at :8080/docs/"
poll 120 "Prometheus scraping the three APIs, four workers, the relay and Flower" prometheus_targets_up 9
poll 60 "Prometheus counting the smoke run's completed sagas" prometheus_positive 'sum(sagas_completed_total)'
say "Prometheus: every target up, the workers' saga counters read from their prefork children"
dc down -v --remove-orphans
FILE=""

# 3. Production: refused on the unchanged .env.example, then run with secrets generated for this
# run (as an operator's .env would hold them)
PROD=(env COMPOSE="${COMPOSE[*]}" PROJECT="$PROJECT" "$ROOT/scripts/compose_proof_prod.sh")
"${PROD[@]}" refuse
"${PROD[@]}" env "$WORK/prod.env" "$WORK/certs"
ENV_FILE=$WORK/prod.env
FILE=docker-compose-prod.yml
say "== $FILE"
bring_up
dc up -d --no-build --scale users-worker=2 --scale profile-worker=2 --scale emails-worker=2 --scale emails-mail-worker=2
poll "$TIMEOUT" "every container healthy after scaling the workers to 2" all_healthy
# Prometheus listens on the host's loopback only, which is not publishing it.
loopback=$(docker ps --filter "label=com.docker.compose.project=$PROJECT" --format '{{.Names}} {{.Ports}}' | grep -E -- ' 127\.0\.0\.1:[0-9]+->9090/tcp$' || true)
[[ $loopback == *prometheus* ]] || die "Prometheus is not on the host's loopback: $loopback"
published=$(docker ps --filter "label=com.docker.compose.project=$PROJECT" --format '{{.Names}} {{.Ports}}' | grep -- '->' | grep -v -F -- "$loopback" || true)
if [ "$(echo "$published" | grep -c .)" != 1 ] || [[ $published != *gateway*:80-\>80/tcp* ]]; then
  die "only the gateway may publish a port (port 80); published: $published"
fi
say "only the gateway is published: $published (Prometheus on the loopback: $loopback)"
# MailHog is not published in production: the smoke script reads it from inside the network.
SMOKE_MAIL_CMD="docker exec $(container_of gateway) wget -qO- http://mailhog:8025/api/v2/messages" \
  scripts/smoke.sh prod || die "scripts/smoke.sh prod"
"${CHECK[@]}" gateway http://127.0.0.1 || die "gateway checks on :80"
say "the contract's calls and the mails, once each, with two workers on every queue"
"${CHECK[@]}" docs http://127.0.0.1 off || die "no API docs and no metrics through the production gateway"
poll 120 "Prometheus scraping the three APIs, eight workers and the relay" prometheus_targets_up 12
poll 60 "Prometheus counting the smoke run's completed sagas" prometheus_positive 'sum(sagas_completed_total)'
say "Prometheus: every target up, two uvicorn workers per API and two workers per queue summed"
dc up -d --no-deps --force-recreate users-api
poll "$TIMEOUT" "every container healthy after recreating users-api" all_healthy
poll 30 "the gateway reaching the recreated users-api" gateway_reaches_users
say "the gateway follows a recreated API container"
auth=$(docker exec "$(container_of flower)" printenv FLOWER_BASIC_AUTH)
status=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1/flower/)
[ "$status" = 401 ] || die "Flower through the gateway without credentials answered $status, expected 401"
[ "$(curl -s -o /dev/null -w '%{http_code}' -u "$auth" http://127.0.0.1/flower/)" = 200 ] || die "Flower with credentials did not answer 200"
poll 60 "Flower's API listing two workers on each queue" flower_api_lists_workers "$auth" 2
say "Flower: 401 without credentials, 200 with them, eight workers seen through the gateway"
ENV_FILE="$ENV_FILE" "${PROD[@]}" check
dc down -v --remove-orphans
FILE=""

say "PASSED: docker-compose.yml and docker-compose-prod.yml, built and run from nothing with ${COMPOSE[*]} on the $IMAGES images"
