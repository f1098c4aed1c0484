#!/usr/bin/env bash
# Install the Debian tools the test suite and the demo use, when they are missing.
# Runs apt-get only as root; otherwise lists what is missing (the tests that need a tool skip
# with a reason naming it). The package list lives here and only here.
set -euo pipefail

PACKAGES=(
  tshark          # independent reference decoder for the capture tests
  iputils-ping    # the peer for the ping runner and its system-ping backend
  iproute2        # ip netns / veth / tc for the lab
  tcpdump         # captures in the lab
  fping           # flent's ICMP runner
  irtt            # flent's UDP RTT runner
  iperf3          # optional TCP load in the lab
  chromium        # headless browser check of rendered notebooks
  procps          # sysctl for the lab's META
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "install-system-deps: not root or no apt-get; missing Debian packages: ${missing[*]}" >&2
  echo "install-system-deps: tests needing them will skip with a reason" >&2
  exit 0
fi

echo "install-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
