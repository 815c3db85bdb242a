#!/usr/bin/env bash
# Builds tapedeck's container image FROM scratch with buildah (no base image is
# pulled: the image is the static binary alone) and writes it twice: OUT.tar in
# Docker's format (docker-archive, the one that carries the HEALTHCHECK) and
# OUT.oci.tar as an OCI archive (oci-archive; OCI's image config has no health
# check field, so there it is left out; everything else is the same).
#
#   bash packaging/container/build.sh [OUT.tar]      (default: tapedeck-image.tar)
#   podman load -i tapedeck-image.tar     # or: docker load -i tapedeck-image.tar
#   podman load -i tapedeck-image.oci.tar # or: skopeo copy oci-archive:... to a registry
#   podman run -d -p 5060:5060/udp -p 8088:8088 -p 10000-10100:10000-10100/udp \
#     -e TAPEDECK_ARI_USER=app:secret -e TAPEDECK_EXTERNAL_HOST=192.0.2.10 -v tapedeck-data:/data tapedeck:VERSION
#
# The image runs as uid 65532 (non-root), keeps everything under the /data
# volume, listens on 0.0.0.0 (so ARI credentials must be given, e.g.
# TAPEDECK_ARI_USER), and checks its health with `tapedeck health` (/readyz).
# Environment: VERSION, COMMIT (default: from git), BUILDAH_ARGS (e.g.
# "--storage-driver vfs" where overlay is not available).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
out=${1:-tapedeck-image.tar}
export BUILDAH_FORMAT=docker
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
COMMIT=${COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}
export GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
read -r -a bargs <<<"${BUILDAH_ARGS:-}"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$VERSION -X main.commit=$COMMIT" -o "$tmp/tapedeck" ./cmd/tapedeck
mkdir -p "$tmp/root/data" && chmod 0700 "$tmp/root/data"

ctr=$(buildah "${bargs[@]}" from --name "tapedeck-build-$$" scratch)
cleanup() { buildah "${bargs[@]}" rm "$ctr" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
buildah "${bargs[@]}" copy --chown 0:0 --chmod 0755 "$ctr" "$tmp/tapedeck" /tapedeck
buildah "${bargs[@]}" copy --chown 65532:65532 "$ctr" "$tmp/root" / # /data, owner-only
buildah "${bargs[@]}" config \
	--user 65532:65532 \
	--workingdir /data \
	--entrypoint '["/tapedeck"]' \
	--cmd '["serve"]' \
	--env TAPEDECK_DATA_DIR=/data \
	--env TAPEDECK_SIP_LISTEN=0.0.0.0:5060 \
	--env TAPEDECK_HTTP_LISTEN=0.0.0.0:8088 \
	--env TAPEDECK_RTP_PORTS=10000-10100 \
	--volume /data \
	--port 5060/udp --port 5060/tcp --port 8088/tcp \
	--stop-signal SIGTERM \
	--healthcheck 'CMD /tapedeck health' \
	--healthcheck-interval 10s --healthcheck-timeout 5s --healthcheck-retries 3 --healthcheck-start-period 5s \
	--label org.opencontainers.image.title=tapedeck \
	--label org.opencontainers.image.version="$VERSION" \
	--label org.opencontainers.image.revision="$COMMIT" \
	"$ctr"
oci=${out%.tar}.oci.tar
rm -f "$out" "$oci"
buildah "${bargs[@]}" commit --format docker "$ctr" "docker-archive:$out:tapedeck:$VERSION" >/dev/null
buildah "${bargs[@]}" commit --format oci --rm "$ctr" "oci-archive:$oci:tapedeck:$VERSION" >/dev/null
echo "wrote $out (Docker format) and $oci (OCI) for tapedeck $VERSION, commit $COMMIT"
