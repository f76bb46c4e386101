#!/usr/bin/env bash
# image.sh - build the Dockerfile with podman once per source state, as
# $IMAGE (default localhost/qatserve:test), in build/podman (lib.sh).
#   deploy/container/image.sh           build unless the image is current
# The image carries a label with a hash of the build context (the files git
# tracks or would track, minus .dockerignore's big exclusions); docker-test,
# k8s-test and lb-test all call this, and only the first one after a change
# builds. The base debian:bookworm-slim is made with debootstrap from the
# host's Debian mirror (no registry here), slimmed like the official image.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
podman_install
podman_env
exec 9>"$PODMAN_DIR/image.lock"
flock 9

context_hash() {
  (cd "$ROOT" && git ls-files -co --exclude-standard 2>/dev/null \
     | grep -Ev '^(\.ci/|build/|bench/results/|bench/out/|tests/fuzz/corpus/)' \
     | LC_ALL=C sort | while IFS= read -r f; do [ -f "$f" ] && printf '%s\n' "$f"; done \
     | tr '\n' '\0' | xargs -0 sha256sum | sha256sum | cut -c1-16)
}

base_image() {
  podman image exists "$BASE_IMAGE" && return 0
  local tarball=$PODMAN_DIR/bookworm-slim.tar
  if [ ! -s "$tarball" ]; then
    # The first deb822 stanza (or sources.list line) for bookworm.
    local mirror r
    mirror=$(awk 'BEGIN{RS=""} /Suites:[^\n]*(^|[ \t])bookworm([ \t\n]|$)/ {
               if (match($0, /URIs:[ \t]*[^ \t\n]+/)) { s=substr($0,RSTART,RLENGTH); sub(/URIs:[ \t]*/,"",s); print s; exit } }' \
               /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
      mirror=$(sed -E 's/\[[^]]*\]//' /etc/apt/sources.list | awk '$1=="deb" && $3=="bookworm" {print $2; exit}')
    fi
    mirror=${mirror:-http://deb.debian.org/debian}
    log "debootstrap --variant=minbase bookworm from $mirror (once; kept in $tarball)"
    r=$PODMAN_DIR/rootfs
    rm -rf "$r"
    debootstrap --variant=minbase bookworm "$r" "$mirror" >"$PODMAN_DIR/debootstrap.log" 2>&1 \
      || { tail -20 "$PODMAN_DIR/debootstrap.log"; die "debootstrap failed"; }
    rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/*.bin "$r"/var/lib/apt/lists/* \
           "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/locale/* "$r"/usr/share/info/* \
           "$r"/var/log/*.log
    printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
      'path-exclude /usr/share/man/*' 'path-exclude /usr/share/locale/*' 'path-exclude /usr/share/info/*' \
      >"$r/etc/dpkg/dpkg.cfg.d/docker"
    echo 'Acquire::Languages "none";' >"$r/etc/apt/apt.conf.d/docker-no-languages"
    rm -f "$r/etc/apt/sources.list"
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
      cp /etc/apt/sources.list.d/debian.sources "$r/etc/apt/sources.list.d/debian.sources"
    else
      printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$mirror" >"$r/etc/apt/sources.list.d/debian.sources"
    fi
    # The host's mirror may be a dated snapshot: no Valid-Until check.
    printf 'Acquire::Check-Valid-Until "false";\nAcquire::Check-Date "false";\n' \
      >"$r/etc/apt/apt.conf.d/99host-mirror"
    tar --numeric-owner -C "$r" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
    rm -rf "$r"
  fi
  log "podman import -> $BASE_IMAGE"
  podman import -q --change 'CMD ["bash"]' "$tarball" "$BASE_IMAGE" >/dev/null
}

hash=$(context_hash)
have=$(podman image inspect -f '{{index .Labels "qatserve.context"}}' "$IMAGE" 2>/dev/null || true)
if [ -n "$hash" ] && [ "$have" = "$hash" ]; then
  log "$IMAGE is current (context $hash)"
  exit 0
fi
base_image
old=$(podman image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
t0=$(ms)
log "podman build -t $IMAGE (context $hash)"
if ! podman build --pull=never --network=host --layers --format docker \
       --label "qatserve.context=$hash" -t "$IMAGE" "$ROOT" >"$PODMAN_DIR/build.log" 2>&1; then
  tail -40 "$PODMAN_DIR/build.log"
  die "podman build failed (log: $PODMAN_DIR/build.log)"
fi
# The previous build of this tag, now untagged (the cached layers of the
# build stages stay: they make the next build fast).
[ -z "$old" ] || [ "$old" = "$(podman image inspect -f '{{.Id}}' "$IMAGE")" ] \
  || podman rmi "$old" >/dev/null 2>&1 || true
log "built $IMAGE in $(( ($(ms) - t0) / 1000 )) s: $(podman image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.1f MB", $1/1e6}')"
