#!/usr/bin/env bash
# Installs the Debian 12 packages MoE Studio needs to build and test.
# Idempotent: when every package is already installed it does not touch apt.
set -euo pipefail

PACKAGES=(
    build-essential cmake ninja-build pkg-config git
    qt6-base-dev libqt6opengl6-dev qt6-charts-dev libimgui-dev
    nlohmann-json3-dev libpcre2-dev libnuma-dev libsqlite3-dev
    libcpp-httplib-dev libgtest-dev
    clang-format xvfb xauth
    clang libclang-rt-14-dev debootstrap
    nodejs npm
)

missing=()
for pkg in "${PACKAGES[@]}"; do
    # NodeSource's nodejs package carries npm itself (and conflicts with Debian's npm).
    if [[ "$pkg" == npm ]] && command -v npm >/dev/null 2>&1; then continue; fi
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != "installed" ]]; then
        missing+=("$pkg")
    fi
done

# The OpenAI client library the server's acceptance test uses (tests/openai_client), exactly as
# its package-lock.json pins it.
install_npm_packages() {
    echo "install-deps: npm ci in tests/openai_client"
    (cd "$(dirname "$0")/../tests/openai_client" && npm ci --no-audit --no-fund)
}

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install-deps: all ${#PACKAGES[@]} packages already installed"
    install_npm_packages
    exit 0
fi

echo "install-deps: installing: ${missing[*]}"

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "install-deps: not root and sudo is not available; install as root: ${missing[*]}" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update
"${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
install_npm_packages
