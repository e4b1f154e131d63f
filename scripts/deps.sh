#!/usr/bin/env bash
# Installs the Debian packages dptrain needs to build and test with cgo
# (OpenBLAS, oneDNN, libjpeg-turbo). Runs apt-get as root, or through sudo; otherwise prints the exact
# command to run and fails. Usage: scripts/deps.sh [extra-package ...]
set -euo pipefail
pkgs=(libopenblas-dev libdnnl-dev libturbojpeg0-dev pkg-config "$@")
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
if [ "$(id -u)" = 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
	SUDO="sudo"
else
	echo "deps: missing Debian packages; run:  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
	echo "deps: (or build without OpenBLAS: CGO_ENABLED=0 make ...)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
