#!/usr/bin/env bash
# Builds docker/Dockerfile and checks the image without a Docker engine or Docker Hub, as on
# the machines CI runs on: podman (Debian's package) builds with chroot isolation, and the two
# base images are made here — docker.io/library/debian:bookworm[-slim] by debootstrap, and
# rust:<version>-bookworm by the official recipe (docker/validate/rust.Containerfile). Then a
# stage built on the image runs, as the image's user, `callguard check` on the image's config
# and the image's own HEALTHCHECK command against `callguard serve`.
#
#   sudo bash docker/validate/podman-build.sh        # about 20 minutes on 2 cores; exit 0 = OK
#
# Needs: podman, debootstrap (apt-get install podman debootstrap), root, and the network to
# deb.debian.org, static.rust-lang.org and crates.io. Not run by .ci/run (too slow for it).
# Leaves the images in podman's store (podman rmi to remove). Uses 127.0.0.1:9464 briefly.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
WORK="${WORK:-/var/tmp/callguard-podman}"
IMAGE="${IMAGE:-localhost/callguard:check}"
say() { printf 'podman-build: %s\n' "$*" >&2; }

for tool in podman debootstrap git; do
    command -v "$tool" >/dev/null 2>&1 || { say "$tool is missing (apt-get install podman debootstrap)"; exit 2; }
done
mkdir -p "$WORK"

# 1. debian:bookworm and bookworm-slim (Docker Hub's are minbase Debian 12 as well).
if ! podman image exists docker.io/library/debian:bookworm; then
    say "debootstrap bookworm (minbase)"
    rm -rf "$WORK/rootfs"
    debootstrap --variant=minbase bookworm "$WORK/rootfs" http://deb.debian.org/debian >"$WORK/debootstrap.log"
    tar -C "$WORK/rootfs" -c . | podman import - docker.io/library/debian:bookworm >/dev/null
    rm -rf "$WORK/rootfs"
fi
podman tag docker.io/library/debian:bookworm docker.io/library/debian:bookworm-slim

# 2. The Dockerfile's rust image, by the official recipe.
rust_image="$(sed -n 's/^FROM \(rust:[^ ]*\) AS build$/\1/p' "$REPO/docker/Dockerfile")"
[ -n "$rust_image" ] || { say "no 'FROM rust:… AS build' in docker/Dockerfile"; exit 2; }
rust_version="${rust_image#rust:}"
rust_version="${rust_version%-bookworm}"
if ! podman image exists "docker.io/library/$rust_image"; then
    say "building a stand-in for $rust_image"
    rm -rf "$WORK/rust" && mkdir -p "$WORK/rust/certs"
    cp "$HERE/rust.Containerfile" "$WORK/rust/Containerfile"
    cp /usr/local/share/ca-certificates/*.crt "$WORK/rust/certs/" 2>/dev/null || true
    podman build --isolation chroot --network host --build-arg "RUST_VERSION=$rust_version" \
        -t "docker.io/library/$rust_image" "$WORK/rust" >"$WORK/rust-build.log" 2>&1 \
        || { tail -20 "$WORK/rust-build.log"; exit 1; }
fi

# 3. The image, from the committed tree (what `docker build` sees, minus .dockerignore).
say "building $IMAGE from docker/Dockerfile (log: $WORK/build.log)"
rm -rf "$WORK/context" && mkdir -p "$WORK/context"
git -C "$REPO" archive HEAD | tar -x -C "$WORK/context"
podman build --format docker --isolation chroot --network host \
    -f docker/Dockerfile -t "$IMAGE" "$WORK/context" >"$WORK/build.log" 2>&1 \
    || { tail -30 "$WORK/build.log"; exit 1; }

# 4. Its configuration, user and health check, from a stage built on it (podman run needs
#    cgroup and rlimit rights some sandboxes lack; a build step does not).
health="$(podman image inspect "$IMAGE" --format '{{json .Config.Healthcheck.Test}}')"
case "$health" in
    '["CMD","bash","-c",'*) ;;
    *) say "unexpected HEALTHCHECK: $health"; exit 1 ;;
esac
probe="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])[3])' "$health")"
mkdir -p "$WORK/probe"
printf '%s\n' "$probe" > "$WORK/probe/health.sh"
cat > "$WORK/probe/Containerfile" <<EOT
FROM $IMAGE
COPY health.sh /tmp/health.sh
RUN id && test "\$(id -un)" = callguard \\
 && callguard check --config "\$CALLGUARD_CONFIG" \\
 && { callguard serve --config "\$CALLGUARD_CONFIG" --log-format json >/tmp/serve.log 2>&1 & pid=\$!; \\
      ok=; for i in \$(seq 100); do if bash /tmp/health.sh; then ok=1; break; fi; sleep 0.1; done; \\
      kill -TERM \$pid; wait \$pid || true; cat /tmp/serve.log; test -n "\$ok"; } \\
 && echo "HEALTHCHECK: healthy"
EOT
say "running the image's check and health check as its user"
podman build --format docker --isolation chroot --network host --no-cache -t localhost/callguard-probe "$WORK/probe" \
    >"$WORK/probe.log" 2>&1 || { tail -30 "$WORK/probe.log"; exit 1; }
grep -E '^uid=|: OK —|^HEALTHCHECK: healthy' "$WORK/probe.log" >&2
podman rmi localhost/callguard-probe >/dev/null 2>&1 || true
size="$(podman image inspect "$IMAGE" --format '{{.Size}}')"
say "OK: $IMAGE ($((size / 1000000)) MB)"
