#!/usr/bin/env bash
# Issue 12's acceptance on Linux: builds the DEB and TGZ (a CPU-only build: the package must
# run where no GPU or CUDA is installed), installs the DEB with apt into a clean Debian 12 root
# made with debootstrap, runs `moestudio-cli --version`, a `generate` on a fixture model and the
# GUI's offscreen smoke test (it answers a prompt on the installed demo model and saves a
# screenshot) from the installed paths, checks that nothing was written beside the binaries,
# then purges the package and checks that none of its files is left.
#   scripts/package-check.sh
# Environment:
#   MOE_PKG_BUILD_DIR  build directory (default build-pkg)
#   MOE_JOBS           parallel build jobs (default nproc)
#   MOE_KEEP_ROOT=1    keep the Debian root afterwards (in $MOE_PKG_BUILD_DIR/debian-root)
# Needs root (or sudo) for debootstrap and chroot, and the machine's Debian mirror.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
B=${MOE_PKG_BUILD_DIR:-$ROOT/build-pkg}
JOBS=${MOE_JOBS:-$(nproc)}
SUDO=()
[[ $(id -u) -ne 0 ]] && SUDO=(sudo)

step() { echo "== package-check: $*"; }
fail() {
    echo "package-check: FAILED: $*" >&2
    exit 1
}

step "build ($B, CPU only)"
cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMOE_WITH_CUDA=OFF -DMOE_BUILD_TESTS=OFF \
    -DCMAKE_INSTALL_PREFIX=/usr > /dev/null
cmake --build "$B" -j "$JOBS"
(cd "$B" && cpack -G "DEB;TGZ" > cpack.log 2>&1) || { cat "$B/cpack.log"; fail "cpack"; }
DEB=$(ls "$B"/moestudio_*.deb | head -n 1)
TGZ=$(ls "$B"/moestudio-*.tar.gz | head -n 1)
[[ -f "$DEB" && -f "$TGZ" ]] || fail "cpack made no .deb or .tar.gz in $B"
step "made $(basename "$DEB") and $(basename "$TGZ")"
dpkg-deb -I "$DEB" | sed -n '/Depends/p'

# The relocatable TGZ: unpacked anywhere, the CLI runs and finds nothing missing.
T=$(mktemp -d)
tar -xzf "$TGZ" -C "$T"
"$T"/moestudio-*/bin/moestudio-cli --version > /dev/null || fail "the TGZ's moestudio-cli does not run"
rm -rf "$T"

# A clean Debian 12: debootstrap's minimal system from the Debian mirror this machine uses.
DR=$B/debian-root
MIRROR=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2> /dev/null ||
    true)
[[ -n "$MIRROR" ]] || MIRROR=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2> /dev/null || true)
[[ -n "$MIRROR" ]] || fail "no Debian mirror in /etc/apt/sources.list.d/debian.sources or sources.list"
command -v debootstrap > /dev/null || fail "debootstrap is missing: run scripts/install-deps.sh"
cleanup() {
    "${SUDO[@]}" umount "$DR/proc" 2> /dev/null || true
    [[ "${MOE_KEEP_ROOT:-0}" == 1 ]] || "${SUDO[@]}" rm -rf "$DR"
}
trap cleanup EXIT
"${SUDO[@]}" rm -rf "$DR"
step "debootstrap bookworm (minbase) into $DR"
"${SUDO[@]}" debootstrap --variant=minbase bookworm "$DR" "$MIRROR" > "$B/debootstrap.log" 2>&1 ||
    { tail -n 20 "$B/debootstrap.log"; fail "debootstrap"; }
"${SUDO[@]}" mount -t proc proc "$DR/proc"
in_root() { "${SUDO[@]}" chroot "$DR" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 "$@"; }

FIXTURE=tests/data/hf-tiny/qwen3_moe-s1
"${SUDO[@]}" cp "$DEB" "$DR/tmp/moestudio.deb"
"${SUDO[@]}" cp -r "$FIXTURE" "$DR/tmp/fixture"
in_root find / -xdev -type f ! -path '/proc/*' ! -path '/tmp/*' ! -path '/var/*' | sort > "$B/files-before.txt"

step "apt-get install ./moestudio.deb"
in_root apt-get install -y -q --no-install-recommends /tmp/moestudio.deb > "$B/apt-install.log" 2>&1 ||
    { tail -n 30 "$B/apt-install.log"; fail "apt-get install"; }
in_root dpkg -L moestudio > "$B/package-files.txt"
for f in /usr/bin/moestudio /usr/bin/moestudio-cli /usr/share/applications/io.moestudio.MoEStudio.desktop \
    /usr/share/metainfo/io.moestudio.MoEStudio.metainfo.xml /usr/share/mime/packages/moestudio-gguf.xml \
    /usr/share/icons/hicolor/256x256/apps/moestudio.png /usr/share/icons/hicolor/scalable/apps/moestudio.svg \
    /usr/share/man/man1/moestudio-cli.1.gz /usr/share/moestudio/demo-model/config.json; do
    grep -qx "$f" "$B/package-files.txt" || fail "the package does not install $f"
done

step "run from the installed paths"
in_root moestudio-cli --version || fail "moestudio-cli --version"
OUT=$(in_root moestudio-cli generate /tmp/fixture --prompt-ids 1,2,3 --max-new-tokens 4 --greedy --ids) ||
    fail "moestudio-cli generate on the fixture"
echo "generate: $OUT"
[[ -n "$OUT" ]] || fail "generate printed nothing"
in_root sh -c 'grep -q "application/x-gguf" /usr/share/mime/globs2' ||
    fail ".gguf is not in the MIME database (shared-mime-info's trigger)"
in_root /usr/bin/env QT_QPA_PLATFORM=offscreen timeout 120 moestudio --screenshot /tmp/smoke.png \
    --prompt "Hello" > "$B/gui-smoke.log" 2>&1 || { tail -n 20 "$B/gui-smoke.log"; fail "GUI smoke test"; }
[[ -s "$DR/tmp/smoke.png" ]] || fail "the GUI smoke test saved no screenshot"
for d in /usr/bin /usr/share/moestudio; do
    extra=$(in_root find "$d" -newer /tmp/moestudio.deb -type f | grep -vxF -f "$B/package-files.txt" || true)
    [[ -z "$extra" ]] || fail "files written beside the installed program: $extra"
done
in_root sh -c 'ls -d "/root/.local/share/MoE Studio"' > /dev/null ||
    fail "the GUI kept no data in the user's data folder"

step "apt-get purge moestudio"
in_root apt-get purge -y -q --autoremove moestudio > "$B/apt-purge.log" 2>&1 ||
    { tail -n 20 "$B/apt-purge.log"; fail "apt-get purge"; }
left=""
while read -r f; do
    [[ -f "$DR$f" || -L "$DR$f" ]] && left+="$f "
done < "$B/package-files.txt"
[[ -z "$left" ]] || fail "left after purge: $left"
[[ ! -e "$DR/usr/share/moestudio" ]] || fail "/usr/share/moestudio left after purge"
in_root find / -xdev -type f ! -path '/proc/*' ! -path '/tmp/*' ! -path '/var/*' | sort > "$B/files-after.txt"
added=$(comm -13 "$B/files-before.txt" "$B/files-after.txt" | grep -v '^/root/' || true)
[[ -z "$added" ]] || fail "files left outside /var and the user's home after purge: $added"
step "ok"
