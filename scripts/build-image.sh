#!/usr/bin/env bash
# Build localhost/busybox:latest from Debian's busybox-static, offline, with `podman import`.
# Idempotent: does nothing when the image already exists (pass --force to rebuild).
# The Python twin is orchestra.runtime.images.ensure_busybox_image(); keep them in step.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/../src/orchestra/data/containers.conf}"
image="${IMAGE:-localhost/busybox:latest}"
busybox="${BUSYBOX:-/bin/busybox}"

if [[ "${1:-}" != "--force" ]] && podman image exists "$image"; then
    echo "$image already present"
    exit 0
fi
[[ -x "$busybox" ]] || { echo "error: $busybox missing (apt-get install busybox-static)" >&2; exit 1; }
# A dynamically linked busybox would not run in an empty rootfs.
if ldd "$busybox" >/dev/null 2>&1; then
    echo "error: $busybox is dynamically linked; install busybox-static" >&2; exit 1
fi

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,etc,tmp,www,root,proc,sys,dev,var/www}
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
    [[ "$applet" == busybox ]] || ln -sf busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' >"$root/etc/group"
printf '<html><body><h1>hello from orchestra busybox</h1></body></html>\n' >"$root/www/index.html"

tar -C "$root" --numeric-owner --owner=0 --group=0 -cf "$root.tar" .
trap 'rm -rf "$root" "$root.tar"' EXIT
podman import --quiet \
    --change 'CMD ["/bin/sh"]' \
    --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'WORKDIR /' \
    --message "orchestra busybox from $("$busybox" | head -1)" \
    "$root.tar" "$image" >/dev/null
echo "built $image"
