#!/usr/bin/env bash
# Install the Debian packages napari needs for a virtual screen (DESIGN.md section 4).
# Does nothing when they are present, when not root, or when not on Debian/Ubuntu.
set -eu
PKGS="xvfb xauth libgl1 libgl1-mesa-dri libegl1 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0
libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0
libxcb-cursor0 libdbus-1-3 libfontconfig1"
if command -v xvfb-run >/dev/null 2>&1 && dpkg -s libxcb-cursor0 libgl1-mesa-dri >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: not root on Debian; install these for GUI tests: $PKGS" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q $PKGS >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q $PKGS >/dev/null; }
