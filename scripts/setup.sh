#!/usr/bin/env bash
# Installs everything rke-ts needs to build and to run its local test cluster on a fresh
# Debian machine (as root): Debian packages, npm dependencies, the compiled CLI.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(docker.io openssh-server openssh-client iproute2 iptables etcd-server etcd-client
  busybox-static openssl s3cmd unzip util-linux procps ca-certificates passwd)

missing=()
for package in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  # Some npm 11 releases write lockfiles without the other platforms' optional packages
  # (rollup, esbuild binaries) and then refuse them in `npm ci`; `npm install --no-save`
  # installs the same locked versions in that case.
  if ! npm ci --no-audit --no-fund --loglevel=error 2>/tmp/rke-ts-npm-ci.log; then
    if grep -q 'EUSAGE' /tmp/rke-ts-npm-ci.log; then
      echo "setup: npm ci refused this npm's own lockfile; installing the locked versions with npm install"
      npm install --no-save --no-audit --no-fund --loglevel=error
    else
      cat /tmp/rke-ts-npm-ci.log >&2
      exit 1
    fi
  fi
fi
npm run --silent build
