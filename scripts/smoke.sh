#!/usr/bin/env bash
# The contract's acceptance calls, with assertions: two sign-ups, their users, profiles and
# subscriptions, a mail to user 2, then the mail's delivery state and the inbox.
#
#   scripts/smoke.sh dev    the development stack (docker compose up --build, or make run):
#                           users :8007, profile :8008, emails :8009, MailHog's API :8025
#   scripts/smoke.sh prod   everything through the gateway, http://127.0.0.1 (port 80)
#
# It needs a FRESH stack: the contract's calls expect the two sign-ups to become users 1 and 2,
# so the script refuses (exit 2, before any call) when user 1 exists already. Start from nothing:
# `docker compose down -v` before `up`, or `make clean` before `make run`.
#
# Env (all optional): SMOKE_USERS_URL, SMOKE_PROFILE_URL, SMOKE_EMAILS_URL (dev: the three APIs;
# by default on 127.0.0.1 at the DEVSTACK_*_PORT that `make run` also reads, else 8007-8009);
# SMOKE_GATEWAY_URL (prod: the base of all three, default http://127.0.0.1; `make run`'s gateway
# is http://127.0.0.1:8080); SMOKE_MAIL_URL (MailHog's API; dev default http://127.0.0.1:8025,
# prod default none: the production inbox is not published); SMOKE_MAIL_CMD (instead: a command
# printing MailHog's /api/v2/messages, e.g. `docker compose -f docker-compose-prod.yml exec -T
# gateway wget -qO- http://mailhog:8025/api/v2/messages`); SMOKE_TIMEOUT (seconds to wait for the
# mail to be sent and to arrive, default 60).
# Needs bash, curl and python3 (standard library only). Exit 0: every assertion passed.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CHECK=(python3 "$HERE/smoke_check.py")
MODE=${1:-dev}
case "$MODE" in
  dev)
    USERS=${SMOKE_USERS_URL:-http://127.0.0.1:${DEVSTACK_USERS_PORT:-8007}}
    PROFILE=${SMOKE_PROFILE_URL:-http://127.0.0.1:${DEVSTACK_PROFILE_PORT:-8008}}
    EMAILS=${SMOKE_EMAILS_URL:-http://127.0.0.1:${DEVSTACK_EMAILS_PORT:-8009}}
    MAIL_URL=${SMOKE_MAIL_URL-http://127.0.0.1:${DEVSTACK_MAIL_HTTP_PORT:-8025}} ;;
  prod)
    USERS=${SMOKE_GATEWAY_URL:-http://127.0.0.1}
    PROFILE=$USERS EMAILS=$USERS
    MAIL_URL=${SMOKE_MAIL_URL:-} ;;
  *) echo "usage: $0 [dev|prod]   (see the comment at the top for the env variables)" >&2; exit 2 ;;
esac
MAIL_CMD=${SMOKE_MAIL_CMD:-}
TIMEOUT=${SMOKE_TIMEOUT:-60}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

say() { echo "[smoke] $*"; }
die() { echo "[smoke] FAILED: $*" >&2; exit 1; }

# One call of the contract: a header line, the response body, then "@@HTTP <status>@@".
call() {
  local method=$1 url=$2
  echo "== $method $url"
  if [ $# -gt 2 ]; then
    curl -sS -w '\n@@HTTP %{http_code}@@\n' "$url" -d "$3" -H "Content-Type: application/json" -X "$method"
  else
    curl -sS -w '\n@@HTTP %{http_code}@@\n' "$url"
  fi || die "$method $url: no answer (is the stack up?)"
}

# Polls "$@" until it succeeds, at most $TIMEOUT seconds; exit status 2 means failed for good.
poll() {
  local what=$1; shift
  local deadline=$((SECONDS + TIMEOUT))
  until "$@"; do
    [ $? -ne 2 ] || die "$what"
    [ $SECONDS -lt $deadline ] || die "$what: not true after ${TIMEOUT}s"
    sleep 1
  done
}

say "mode $MODE: users $USERS, profile $PROFILE, emails $EMAILS"
first=$(curl -sS -o /dev/null -w '%{http_code}' "$USERS/v1/users/1") || die "GET $USERS/v1/users/1: no answer (is the stack up?)"
case "$first" in
  404) ;;
  200) echo "[smoke] NOT A FRESH STACK: user 1 exists already, and the contract's calls create users 1 and 2." >&2
       echo "[smoke] Start from nothing: docker compose down -v (then up --build), or make clean (then make run)." >&2
       exit 2 ;;
  *) die "GET $USERS/v1/users/1 answered $first before any call (expected 404 on a fresh stack)" ;;
esac

# The contract's calls, in its order (the JSON bodies are its own, byte for byte).
{
  call POST "$USERS/v1/register/" '{"email":"j@vv.cc","first_name":"John","last_name":"Doe","active":"False","password":"x" }'
  call POST "$USERS/v1/register/" '{"email":"qqj@vv.cc","first_name":"Jane","last_name":"Smith","active":"True","password":"x" }'
  call GET "$USERS/v1/users/1"
  call GET "$USERS/v1/users/2"
  call GET "$USERS/v1/users/3"
  call POST "$PROFILE/v1/profile/add/" '{"user_id": 1, "account_type":0, "iban":"XX1111111111111111111111"}'
  call POST "$PROFILE/v1/profile/add/" '{"user_id": 2, "account_type":7, "iban":"YY2222222222222222222222"}'
  call POST "$PROFILE/v1/profile/add/" '{"user_id": 3, "account_type":8, "iban":"YX2222222222222222222222"}'
  call GET "$PROFILE/v1/profile/1"
  call GET "$PROFILE/v1/profile/2"
  call POST "$PROFILE/v1/subscription/add/" '{"user_id":1}'
  call POST "$PROFILE/v1/subscription/add/" '{"user_id":2}'
  call GET "$PROFILE/v1/subscription/1"
  call GET "$PROFILE/v1/subscription/2"
  call POST "$EMAILS/v1/emails/send/" '{"user_id":2, "subject":"SSSSSSS", "body":"Hi there!"}'
} | tee "$WORK/transcript"
"${CHECK[@]}" contract "$WORK/transcript" || die "the contract's assertions (above)"
say "the contract's 15 calls: every status and key field as expected"

message_id=$("${CHECK[@]}" message-id "$WORK/transcript")
message_sent() { curl -fsS "$EMAILS/v1/emails/$message_id" | "${CHECK[@]}" message-sent; }
poll "the 'Hi there!' mail (message $message_id) sent" message_sent
say "GET /v1/emails/$message_id: sent"

inbox() {
  if [ -n "$MAIL_CMD" ]; then bash -c "$MAIL_CMD"; else curl -fsS "$MAIL_URL/api/v2/messages"; fi
}
if [ -n "$MAIL_URL$MAIL_CMD" ]; then
  in_inbox() { inbox | "${CHECK[@]}" mail; }
  poll "the two welcome mails and the 'Hi there!' mail in the inbox, once each" in_inbox
  say "the inbox holds both welcome mails and the 'Hi there!' mail, once each"
else
  say "inbox not read (production does not publish it; set SMOKE_MAIL_URL or SMOKE_MAIL_CMD to read it)"
fi
say "PASSED ($MODE)"
