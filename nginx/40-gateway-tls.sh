#!/bin/sh
# Run by the nginx image's entrypoint after the templates are rendered: when a certificate and
# its key are mounted in /etc/nginx/certs (fullchain.pem, privkey.pem), the gateway also serves
# HTTPS on GATEWAY_TLS_PORT and redirects plain HTTP there; without them, plain HTTP only.
set -eu
certs=/etc/nginx/certs
out=/etc/nginx/gateway-tls
mkdir -p "$out"
rm -f "$out/tls.conf"
if [ -f "$certs/fullchain.pem" ] && [ -f "$certs/privkey.pem" ]; then
  # The port clients use for HTTPS (the published one), in redirects: nothing for 443.
  public_port=${GATEWAY_HTTPS_PUBLIC_PORT:-443}
  GATEWAY_HTTPS_PORT_SUFFIX=""
  [ "$public_port" = 443 ] || GATEWAY_HTTPS_PORT_SUFFIX=":$public_port"
  export GATEWAY_TLS_PORT GATEWAY_HTTPS_PORT_SUFFIX
  envsubst '${GATEWAY_TLS_PORT} ${GATEWAY_HTTPS_PORT_SUFFIX}' </etc/nginx/tls.conf.template >"$out/tls.conf"
  echo "$0: HTTPS on port $GATEWAY_TLS_PORT with $certs/fullchain.pem; plain HTTP redirects to it"
elif [ -e "$certs/fullchain.pem" ] || [ -e "$certs/privkey.pem" ]; then
  echo "$0: $certs holds only one of fullchain.pem and privkey.pem: both are needed for HTTPS" >&2
  exit 1
else
  echo "$0: no certificate in $certs: plain HTTP only"
fi
