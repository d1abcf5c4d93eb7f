#!/usr/bin/env bash
# End-to-end demo on a fresh Debian machine (as root): installs what it needs, builds
# rke-ts, starts a local 3-node RKE-style cluster (network namespaces, each node with its
# own sshd, dockerd and TLS etcd member), takes a snapshot with `rke-ts etcd snapshot-save`
# and shows the result on every node. `--keep` leaves the cluster running afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

keep=0
[ "${1:-}" = "--keep" ] && keep=1

bash scripts/setup.sh
cluster=test/cluster/cluster.sh
echo "demo: starting a local 3-node cluster"
bash "$cluster" up demo 3 --slot 20
[ "$keep" = 1 ] || trap 'echo "demo: tearing the cluster down"; bash "$cluster" down demo >/dev/null' EXIT
eval "$(bash "$cluster" env demo)"

config="$RKETS_STATE_DIR/cluster.yml"
{
  echo "cluster_name: demo"
  echo "ssh_key_path: $RKETS_SSH_KEY"
  echo "nodes:"
  for i in $(seq 1 "$RKETS_NODE_COUNT"); do
    address_var="RKETS_NODE_${i}_ADDRESS"
    echo "  - address: ${!address_var}"
    echo "    user: $RKETS_SSH_USER"
    echo "    role: [controlplane, etcd, worker]"
  done
  echo "system_images:"
  echo "  etcd: $RKETS_ETCD_DISTROLESS_IMAGE"
  echo "  alpine: $RKETS_TOOLS_IMAGE"
} > "$config"
echo "demo: cluster.yml written to $config:"
sed 's/^/    /' "$config"

bash "$cluster" etcdctl demo 1 put /registry/demo/greeting "hello from before the snapshot" >/dev/null

echo
echo "demo: \$ rke-ts etcd snapshot-save --config $config --name demo-snapshot"
node bin/rke-ts.js etcd snapshot-save --config "$config" --name demo-snapshot

echo
echo "demo: the snapshot on every node:"
for i in $(seq 1 "$RKETS_NODE_COUNT"); do
  root_var="RKETS_NODE_${i}_ROOT"
  address_var="RKETS_NODE_${i}_ADDRESS"
  file="${!root_var}/opt/rke/etcd-snapshots/demo-snapshot"
  echo "  ${!address_var}:/opt/rke/etcd-snapshots/demo-snapshot  $(stat -c %s "$file") bytes  sha256 $(sha256sum "$file" | cut -c1-16)…"
  ETCDCTL_API=3 etcdctl snapshot status "$file" -w table | sed 's/^/    /'
done
echo
echo "demo: \$ rke-ts etcd snapshot-list --config $config"
node bin/rke-ts.js -q etcd snapshot-list --config "$config"
echo
echo "demo: \$ rke-ts etcd snapshot-verify --config $config --name demo-snapshot"
node bin/rke-ts.js -q etcd snapshot-verify --config "$config" --name demo-snapshot
[ "$keep" = 1 ] && echo "demo: cluster left running; remove it with: bash $cluster down demo"
echo "demo: done"
