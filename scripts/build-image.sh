#!/usr/bin/env bash
# Builds the CPU image from deploy/images/Dockerfile without a Docker engine, and trains inside it.
#
#   1. base: a Debian bookworm root filesystem made by mmdebstrap from the apt archive, imported as the local image
#      localhost/ringlet-base:bookworm (made once; kept as a tarball and in the vfs store, both in the cache folder);
#   2. build: `buildah bud` (vfs storage driver, chroot isolation) of the Dockerfile on that base;
#   3. export: `buildah push` into an OCI archive ($RINGLET_IMAGE_OUT, default <cache>/ringlet-<version>.oci.tar);
#   4. check: in a container of the image, `ringlet --version`, `ringlet data prepare --vocab 512` on two ELTeC
#      novels and a 3-step `ringlet train`; the novels and the run are mounted in from a temporary folder, never baked
#      into the image;
#   5. prints the build time, the image size (OCI archive and unpacked) and the train's summary line.
#
# Needs root (buildah's chroot isolation, mmdebstrap), buildah and mmdebstrap (installed with apt-get when missing),
# and the npm registry and Debian's archive. About 4 minutes from cold on 2 cores; test/image-build.test.ts runs
# it in the suite (docs/deploy.md, "Images", has the recorded figures).
#
# Environment: RINGLET_IMAGE (default localhost/ringlet:<version>), RINGLET_IMAGE_CACHE (default
# ~/.cache/ringlet-image), RINGLET_IMAGE_OUT (the OCI archive), RINGLET_ELTEC (default ../shared/data/eltec/swe),
# RINGLET_BASE_REBUILD=1 (make the base again).
set -euo pipefail
cd "$(dirname "$0")/.."

export BUILDAH_ISOLATION=chroot
version=$(node -p 'require("./package.json").version')
image=${RINGLET_IMAGE:-localhost/ringlet:$version}
base=localhost/ringlet-base:bookworm
cache=${RINGLET_IMAGE_CACHE:-$HOME/.cache/ringlet-image}
out=${RINGLET_IMAGE_OUT:-$cache/ringlet-$version.oci.tar}
eltec=${RINGLET_ELTEC:-../shared/data/eltec/swe}
mkdir -p "$cache" "$(dirname "$out")"
log() { printf '[build-image %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

[ "$(id -u)" = 0 ] || { echo 'build-image.sh: run as root (buildah chroot isolation and mmdebstrap need it)' >&2; exit 1; }
if ! command -v buildah >/dev/null || ! command -v mmdebstrap >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah mmdebstrap
fi
# Every buildah call on the vfs storage driver (no overlay mounts: works inside a container, on any filesystem), with
# its own store under the cache folder. buildah 1.28 ignores STORAGE_DRIVER in the environment; the global flag
# counts. Builds and runs use chroot isolation (no user namespaces, no runc), each with --isolation chroot.
store=$cache/storage
buildah() { command buildah --storage-driver vfs --root "$store" --runroot "$cache/run" "$@"; }

# 1. The base image: Debian bookworm minbase (apt, dpkg, coreutils, passwd), with updates and security updates in
# its sources, without man pages, docs and locales (as debian:bookworm-slim).
start=$(date +%s)
if [ "${RINGLET_BASE_REBUILD:-0}" = 1 ] || ! buildah inspect --type image "$base" >/dev/null 2>&1; then
  tarball=$cache/bookworm-minbase.tar
  if [ "${RINGLET_BASE_REBUILD:-0}" = 1 ] || [ ! -s "$tarball" ]; then
    log "mmdebstrap: bookworm minbase -> $tarball"
    mmdebstrap --quiet --variant=minbase --include=ca-certificates \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
      bookworm "$tarball.part" \
      'deb http://deb.debian.org/debian bookworm main' \
      'deb http://deb.debian.org/debian bookworm-updates main' \
      'deb http://deb.debian.org/debian-security bookworm-security main'
    mv "$tarball.part" "$tarball"
  fi
  log "importing $tarball as $base"
  ctr=$(buildah from scratch)
  buildah add --quiet "$ctr" "$tarball" / >/dev/null
  buildah config --cmd /bin/bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
  buildah commit --quiet --rm "$ctr" "$base" >/dev/null
fi
base_s=$(($(date +%s) - start))
log "base ready in ${base_s}s"
[ "${RINGLET_BASE_ONLY:-0}" = 1 ] && exit 0

# 2. The image, from the Dockerfile.
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
log "buildah bud deploy/images/Dockerfile -> $image"
start=$(date +%s)
# The machine's CA bundle, mounted for the builder's downloads (curl, npm), so that a TLS-inspecting proxy's CA that
# this machine trusts is trusted there too; the runtime image keeps Debian's own bundle.
ca=/etc/ssl/certs/ca-certificates.crt
ca_args=()
[ -s "$ca" ] && ca_args=(--volume "$ca:/run/host-ca.crt:ro" --build-arg CURL_CA_BUNDLE=/run/host-ca.crt
  --build-arg NPM_CONFIG_CAFILE=/run/host-ca.crt --build-arg NODE_EXTRA_CA_CERTS=/run/host-ca.crt)
# --format docker: HEALTHCHECK exists only in Docker's image config (OCI's has no such field, and buildah drops it from
# an OCI-format build); the OCI archive below therefore carries everything but the health check.
buildah bud --isolation chroot --format docker --layers=false "${ca_args[@]}" \
  --build-arg BASE="$base" --build-arg VERSION="$version" --build-arg REVISION="$revision" \
  --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  -f deploy/images/Dockerfile -t "$image" .
build_s=$(($(date +%s) - start))
log "built in ${build_s}s"

# 3. The OCI archive.
rm -f "$out"
buildah push --quiet "$image" "oci-archive:$out:${image##*/}" >/dev/null
archive_bytes=$(stat -c %s "$out")

# 4. Inside the image: a container of it, with the novels and a scratch folder for the dataset and the run mounted in.
# `buildah run` runs the given command (not the ENTRYPOINT) as the image's user (10001).
scratch=$(mktemp -d)
ctr=$(buildah from --quiet "$image")
cleanup() { buildah rm "$ctr" >/dev/null 2>&1 || true; rm -rf "$scratch"; }
trap cleanup EXIT
unpacked=$(du -sb "$(buildah mount "$ctr")" | cut -f1)
buildah umount "$ctr" >/dev/null
mkdir -p "$scratch/novels" "$scratch/work"
mapfile -t novels < <(ls "$eltec"/*.xml | sort | head -2)
cp "${novels[@]}" "$scratch/novels/"
chown -R 10001:10001 "$scratch/work"
inside() { buildah run --isolation chroot -v "$scratch/novels:/novels:ro" -v "$scratch/work:/work" "$ctr" -- "$@"; }

log "ringlet --version"
version_out=$(inside ringlet --version)
echo "$version_out"
log "ringlet data prepare --vocab 512 (${novels[*]##*/})"
inside ringlet data prepare --input /novels --out /work/data --vocab 512 --json | tail -1
log "ringlet train: 3 steps"
start=$(date +%s)
train_out=$(inside ringlet train --data /work/data --out /work/run --preset nano --max-steps 3 --batch-size 4 \
  --eval-every 3 --log-every 1 --json | tee >(cat >&2) | tail -1)
train_s=$(($(date +%s) - start))
node -e 'const s = JSON.parse(process.argv[1]); if (!(s.steps >= 3 || s.step >= 3)) { console.error("train: fewer than 3 steps"); process.exit(1); }' "$train_out" \
  || { echo "build-image.sh: unexpected train summary: $train_out" >&2; exit 1; }
native=$(inside node -p 'require("/opt/ringlet/kernels/native/build/status.json").ok')
# The HEALTHCHECK: in the image's config, and its command answering for a health server started in the container
# (`ringlet serve`; chroot isolation shares the host's network, hence an unusual port).
healthcheck=$(buildah inspect --type image --format '{{.Docker.Config.Healthcheck.Test}}' "$image" 2>/dev/null) || healthcheck=
[ -n "$healthcheck" ] || { echo 'build-image.sh: the image has no HEALTHCHECK' >&2; exit 1; }
log "HEALTHCHECK $healthcheck against ringlet serve on :18471"
health=$(inside sh -c 'ringlet serve --runs /work --db /work/results.db --port 18471 >/work/serve.log 2>&1 & pid=$!
  for i in $(seq 60); do
    if RINGLET_HEALTH_URL=http://127.0.0.1:18471/healthz node /opt/ringlet/deploy/images/healthcheck.mjs 2>/dev/null; then
      echo "healthy after ${i} tries"; kill $pid; exit 0
    fi
    sleep 0.5
  done
  kill $pid; echo unhealthy; cat /work/serve.log; exit 1')
echo "$health"

# 5. Figures.
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo
echo "image:         $image (revision $revision)"
echo "OCI archive:   $out, $(mib "$archive_bytes") (layers gzip-compressed)"
echo "unpacked:      $(mib "$unpacked") (root filesystem)"
echo "base:          ${base_s}s (0 when cached)"
echo "build:         ${build_s}s (buildah bud, vfs, chroot isolation)"
echo "native:        $native"
echo "healthcheck:   $health"
echo "--version:     $version_out"
echo "train (${train_s}s): $train_out"
