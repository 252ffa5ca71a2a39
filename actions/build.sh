#!/usr/bin/env bash
# Builds the image of every action offline: a root filesystem made of Debian's busybox-static
# (/bin/busybox and the applet links below), the client binaries an action lists in its
# `binaries` file (copied from the host with the shared libraries `ldd` names), the shared
# /rootfix/lib/*.sh and the action's own rootfix/ folder, imported with `docker import` as the
# `image:` of its action.yaml. Nothing is pulled. An image whose inputs did not change is kept.
#
#   actions/build.sh            build every image (installs busybox-static with apt if missing)
#   actions/build.sh NAME...    build the images of these actions only
#   actions/build.sh --list     print the image tags, one a line
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# Applets every image gets (a small, fixed surface: no init, mount, reboot, ...).
APPLETS="sh ash adjtimex awk basename cat chmod chown cmp cp cut date dirname echo env expr false grep head id
kill ls mkdir mktemp mv nc nslookup od printf ps rm sed seq sha256sum sleep sort stat tail tee
test [ timeout touch tr true uniq wc wget xargs"

image_of() { # action.yaml -> its image tag, or nothing
  sed -n 's/^[[:space:]]*image:[[:space:]]*["'\'']\{0,1\}\([^"'\''[:space:]#]*\).*/\1/p' "$1" | head -n 1
}

actions_with_images() {
  local yaml
  for yaml in "$here"/*/action.yaml; do
    [ -n "$(image_of "$yaml")" ] && basename "$(dirname "$yaml")"
  done
  return 0
}

if [ "${1:-}" = "--list" ]; then
  for name in $(actions_with_images); do image_of "$here/$name/action.yaml"; done
  exit 0
fi

log() { printf '==> %s\n' "$*" >&2; }

command -v docker >/dev/null || { log "docker is missing"; exit 1; }
# Debian's busybox-static: one static binary (the dynamic `busybox` package would need its
# libraries in every image).
busybox_static() {
  [ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx wget &&
    ! ldd /bin/busybox 2>/dev/null | grep -q '=>'
}
if ! busybox_static; then
  log "installing busybox-static"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends busybox-static >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends busybox-static >/dev/null; }
fi
BUSYBOX=/bin/busybox

# The host files of one action's `binaries` list (comments and blank lines skipped).
binaries_of() {
  [ -f "$here/$1/binaries" ] || return 0
  sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$here/$1/binaries"
}

# Copies a host file into the rootfs at the same path, following symlinks.
copy_host_file() {
  local src=$1 root=$2
  mkdir -p "$root$(dirname "$src")"
  cp -L "$src" "$root$src"
}

# Everything the image is made of, hashed: unchanged inputs keep the existing image.
input_hash() {
  local name=$1 bin
  {
    # Contents only, not paths: two checkouts of one commit build the same images.
    sha256sum "$here/build.sh" "$BUSYBOX" | cut -d" " -f1
    (cd "$here" && find lib "$name" -type f ! -name '*.md' -print0 | sort -z | xargs -0 sha256sum)
    (cd "$here" && find "$name" -type f -perm -u+x -print0 | sort -z | xargs -0 -r printf 'x %s\n')
    for bin in $(binaries_of "$name"); do
      sha256sum "$(readlink -f "$bin")"
      ldd "$bin" 2>/dev/null | awk '/=>/ { print $3 } /^[[:space:]]*\// { print $1 }' | sort -u |
        while read -r lib; do [ -f "$lib" ] && sha256sum "$(readlink -f "$lib")"; done
    done
  } | sha256sum | cut -c1-64
}

build_one() {
  local name=$1 tag hash current root bin lib
  tag=$(image_of "$here/$name/action.yaml")
  [ -n "$tag" ] || { log "$name: no image (runner without containers); skipped"; return 0; }
  [ -d "$here/$name/rootfix" ] || { log "$name: no rootfix/ folder with phase scripts"; return 1; }
  for bin in $(binaries_of "$name"); do
    [ -f "$bin" ] || { log "$name: $bin is missing on this host (see actions/$name/binaries)"; return 1; }
  done
  hash=$(input_hash "$name")
  current=$(docker image inspect -f '{{ index .Config.Labels "rootfix.build" }}' "$tag" 2>/dev/null || true)
  if [ "$current" = "$hash" ]; then
    log "$tag is up to date"
    return 0
  fi
  root=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$root'" RETURN
  mkdir -p "$root"/{bin,etc,tmp,proc,dev,sys,rootfix/lib,rootfix/state}
  chmod 1777 "$root/tmp"
  cp "$BUSYBOX" "$root/bin/busybox"
  for applet in $APPLETS; do ln -s busybox "$root/bin/$applet"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
  for bin in $(binaries_of "$name"); do
    copy_host_file "$bin" "$root"
    for lib in $(ldd "$bin" | awk '/=>/ { print $3 } /^[[:space:]]*\// { print $1 }' | sort -u); do
      copy_host_file "$lib" "$root"
    done
  done
  cp "$here"/lib/*.sh "$root/rootfix/lib/"
  cp -R "$here/$name/rootfix/." "$root/rootfix/"
  find "$root/rootfix" -type f ! -name '*.sh' -exec chmod 0755 {} +
  chmod 0644 "$root"/rootfix/lib/*.sh
  tar -C "$root" --numeric-owner --owner=0 --group=0 -c . |
    docker import \
      --change "LABEL rootfix.build=$hash" \
      --change "LABEL rootfix.action=$name" \
      --change 'ENV PATH=/usr/bin:/bin' \
      --change 'WORKDIR /' \
      - "$tag" >/dev/null
  log "built $tag ($(du -sk "$root" | cut -f1) KiB)"
}

names=("$@")
if [ ${#names[@]} -eq 0 ]; then mapfile -t names < <(actions_with_images); fi
started=$(date +%s)
for name in "${names[@]}"; do
  [ -f "$here/$name/action.yaml" ] || { log "no action $name"; exit 1; }
  build_one "$name"
done
log "images ready in $(($(date +%s) - started)) s"
