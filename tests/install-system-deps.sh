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
  iperf           # flent's UDP flood runner (iperf 2)
  chromium        # headless browser check of rendered notebooks
  procps          # sysctl for the lab's META
  gcc             # compiles the kernel oracle (tools/kernel-oracle) the hashing tests compare with
)

# netperf (flent's TCP/UDP load runner) is in Debian's non-free component only. It is fetched
# from there with a private apt configuration (the machine's sources are not changed) and
# installed without starting its netserver service.
NONFREE_PACKAGES=(netperf)

missing=()
for pkg in "${PACKAGES[@]}" "${NONFREE_PACKAGES[@]}"; do
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
main=()
nonfree=()
for pkg in "${missing[@]}"; do
  if [[ " ${NONFREE_PACKAGES[*]} " == *" $pkg "* ]]; then nonfree+=("$pkg"); else main+=("$pkg"); fi
done
if [ ${#main[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${main[@]}" >/dev/null
fi
if [ ${#nonfree[@]} -gt 0 ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $codename non-free" \
    > "$work/sources.list"
  apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
            -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
            -o APT::Sandbox::User=root)
  apt-get "${apt_opts[@]}" update -qq
  (cd "$work/debs" && apt-get "${apt_opts[@]}" download "${nonfree[@]}" >/dev/null)
  # no service starts during the install (Debian's policy-rc.d convention)
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  dpkg -i "$work"/debs/*.deb >/dev/null || apt-get install -f -y -qq >/dev/null
  if [ "$made_policy" -eq 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
exit 0
