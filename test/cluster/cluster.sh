#!/usr/bin/env bash
# Local multi-node test cluster for the rke-ts integration tests.
#
# Every "node" is a network namespace plus a private mount namespace on this machine. It has
# its own address on a per-cluster bridge, its own sshd (port 22 on that address) and its own
# dockerd (with its own containerd), and runs etcd in a container named `etcd` exactly as RKE
# does. The node's /opt/rke, /etc/kubernetes, /var/lib/etcd and /run are bind mounts of
# directories under the cluster's state dir, so files a test expects on "the node" can be read
# from the host under <state>/n<i>/root/...; everything else is the host's file system.
#
# Usage: cluster.sh <command> [args]   (run as root)
#   install-deps                         apt-get install what the cluster needs, if missing
#   images                               build the cached root-file-system tars of the images
#   up NAME COUNT [--slot K] [--etcd-nodes 1,2,3|none] [--image shell|distroless]
#   down NAME                            tear everything of NAME down (safe on partial state)
#   add-node NAME                        one more node: docker, sshd, certs, no etcd
#   kill-node NAME I [--unplug]          kill everything on node I (--unplug: also cut its link,
#                                        so connections time out instead of being refused)
#   stop-etcd NAME I | start-etcd NAME I docker stop/start the node's `etcd` container
#   etcdctl NAME I ARGS...               host etcdctl (API 3) against node I, with its certs
#   docker NAME I ARGS...                docker CLI against node I's daemon
#   env NAME                             KEY=value lines describing the cluster
#
# Environment: RKE_TS_TEST_ROOT (default /var/tmp/rke-ts-test) holds one state dir per cluster
# and the image cache; RKE_TS_DOCKER_CLI overrides the docker client binary.
set -euo pipefail
umask 022

SCRIPT_PATH=$(readlink -f "${BASH_SOURCE[0]}")
TEST_ROOT=${RKE_TS_TEST_ROOT:-/var/tmp/rke-ts-test}
CACHE_DIR="$TEST_ROOT/.cache"
DOCKER_CLI=${RKE_TS_DOCKER_CLI:-docker}

# Bump when the image recipe changes, so cached tars are rebuilt.
IMAGE_RECIPE=1
IMAGE_PATH_ENV='PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
TOOLS_IMAGE=rke-ts.test/tools:latest

SSH_USER=rkets
NODOCKER_USER=rkets-nodocker

# Node directories that are private to each node (bind mounts in its mount namespace).
NODE_MOUNTS=(/opt/rke /etc/kubernetes /var/lib/etcd /run)

DOCKERD_WAIT_SECONDS=60
ETCD_WAIT_SECONDS=90

# Everything the cluster needs from Debian; command (or exact path) -> package. The images are
# built from Debian's etcd binaries, so those are checked by path.
declare -A DEP_PACKAGES=(
  [dockerd]=docker.io [sshd]=openssh-server [ssh]=openssh-client [ssh-keygen]=openssh-client
  [ip]=iproute2 [iptables]=iptables [/usr/bin/etcd]=etcd-server [/usr/bin/etcdctl]=etcd-client
  [busybox]=busybox-static [openssl]=openssl [s3cmd]=s3cmd [nsenter]=util-linux
  [unshare]=util-linux [flock]=util-linux
)

log() { printf '[cluster %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf '[cluster] error: %s\n' "$*" >&2; exit 1; }

# ----------------------------------------------------------------------------------------------
# Naming and state
# ----------------------------------------------------------------------------------------------

validate_name() {
  [[ ${1:-} =~ ^[a-z0-9][a-z0-9-]{0,30}$ ]] || die "invalid cluster name '${1:-}' (use [a-z0-9-], at most 31 chars)"
}

state_dir() { printf '%s/%s' "$TEST_ROOT" "$1"; }
bridge_name() { printf 'rkets%s' "$1"; }             # rkets<K>
netns_name() { printf 'rkets%s-n%s' "$1" "$2"; }     # rkets<K>-n<i>
veth_name() { printf 'rkets%sv%s' "$1" "$2"; }       # host side; at most 15 chars
node_address() { printf '10.177.%s.%s' "$1" $((10 + $2)); }
dashed() { printf '%s' "${1//./-}"; }

# Loads cluster.env of NAME into the shell (SLOT, COUNT, ETCD_NODES, ETCD_IMAGE, ...).
load_state() {
  local name=$1 dir
  validate_name "$name"
  dir=$(state_dir "$name")
  [[ -f $dir/cluster.env ]] || die "no cluster '$name' (missing $dir/cluster.env; run up first)"
  # shellcheck disable=SC1091
  source "$dir/cluster.env"
  STATE=$dir
}

# Rewrites cluster.env from the current shell variables.
save_state() {
  cat >"$STATE/cluster.env.tmp" <<EOF
NAME=$NAME
SLOT=$SLOT
COUNT=$COUNT
ETCD_NODES="$ETCD_NODES"
IMAGE_FLAVOR=$IMAGE_FLAVOR
ETCD_IMAGE=$ETCD_IMAGE
ETCD_SHELL_IMAGE=$ETCD_SHELL_IMAGE
ETCD_DISTROLESS_IMAGE=$ETCD_DISTROLESS_IMAGE
EOF
  mv "$STATE/cluster.env.tmp" "$STATE/cluster.env"
}

node_dir() { printf '%s/n%s' "$STATE" "$1"; }
node_root() { printf '%s/n%s/root' "$STATE" "$1"; }
node_socket() { printf '%s/n%s/root/run/docker.sock' "$STATE" "$1"; }

is_etcd_node() {
  local i=$1 n
  for n in $ETCD_NODES; do [[ $n == "$i" ]] && return 0; done
  return 1
}

require_node() {
  [[ ${1:-} =~ ^[0-9]+$ ]] && ((${1} >= 1 && ${1} <= COUNT)) || die "no node '${1:-}' in cluster $NAME (1..$COUNT)"
}

# ----------------------------------------------------------------------------------------------
# install-deps
# ----------------------------------------------------------------------------------------------

missing_packages() {
  local cmd pkg missing=()
  for cmd in "${!DEP_PACKAGES[@]}"; do
    pkg=${DEP_PACKAGES[$cmd]}
    if [[ $cmd == /* ]]; then
      [[ -x $cmd ]] || missing+=("$pkg")
    elif ! command -v "$cmd" >/dev/null 2>&1 && [[ ! -x /usr/sbin/$cmd ]]; then
      missing+=("$pkg")
    fi
  done
  # With AppArmor enabled, dockerd needs apparmor_parser to load its container profile.
  if [[ $(cat /sys/module/apparmor/parameters/enabled 2>/dev/null) == Y ]] &&
    ! command -v apparmor_parser >/dev/null && [[ ! -x /usr/sbin/apparmor_parser ]]; then
    missing+=(apparmor)
  fi
  ((${#missing[@]} == 0)) || printf '%s\n' "${missing[@]}" | sort -u
}

cmd_install_deps() {
  local missing
  missing=$(missing_packages)
  [[ -z $missing ]] && return 0
  log "installing: $(echo $missing)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# ----------------------------------------------------------------------------------------------
# images: root-file-system tars, built once into the cache, imported into every node's dockerd
# ----------------------------------------------------------------------------------------------

etcd_version() { /usr/bin/etcd --version | sed -n 's/^etcd Version: //p'; }

# The cache key covers the recipe and the exact binaries that go into the images.
image_cache_dir() {
  local key
  key=$( (echo "$IMAGE_RECIPE"; cat /usr/bin/etcd /usr/bin/etcdctl "$(command -v busybox)") | sha256sum | cut -c1-16)
  printf '%s/images-%s' "$CACHE_DIR" "$key"
}

# Copies a dynamically linked binary and the libraries ldd reports (at the same paths).
copy_with_libs() {
  local bin=$1 rootfs=$2 dest=$3 lib
  install -D -m 0755 "$bin" "$rootfs$dest"
  # A static binary has no libraries (ldd fails).
  for lib in $(ldd "$bin" 2>/dev/null | grep -o '/[^ ]*' || true); do
    [[ -e $rootfs$lib ]] || install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
  done
}

# /tmp, root's home, passwd/group, and nsswitch.conf so Go resolves from /etc/hosts first.
base_files() {
  local rootfs=$1 shell=$2
  mkdir -p "$rootfs/etc" "$rootfs/root"
  install -d -m 1777 "$rootfs/tmp"
  printf 'root:x:0:0:root:/root:%s\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' "$shell" >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
}

# busybox as /bin/busybox plus a symlink for every applet at its usual place (busybox-static
# normally; a dynamic busybox brings its libraries).
add_busybox() {
  local rootfs=$1 applet busybox
  busybox=$(command -v busybox)
  copy_with_libs "$busybox" "$rootfs" /bin/busybox
  for applet in $("$busybox" --list-full); do
    [[ $applet == */* ]] || continue # skips "linuxrc"
    [[ -e $rootfs/$applet ]] && continue
    mkdir -p "$rootfs/$(dirname "$applet")"
    ln -s /bin/busybox "$rootfs/$applet"
  done
}

pack_rootfs() { tar --numeric-owner --owner=0 --group=0 -C "$1" -cf "$2" .; }

cmd_images() {
  local dir tmp flavor
  dir=$(image_cache_dir)
  [[ -f $dir/done ]] && { echo "$dir"; return 0; }
  mkdir -p "$CACHE_DIR"
  exec 8>"$CACHE_DIR/.lock"
  flock 8 # another `up` may be building the same images
  if [[ ! -f $dir/done ]]; then
    log "building images into $dir"
    tmp=$(mktemp -d "$CACHE_DIR/build.XXXXXX")
    mkdir -p "$tmp/distroless" "$tmp/shell" "$tmp/tools"
    for flavor in distroless shell; do
      copy_with_libs /usr/bin/etcd "$tmp/$flavor" /usr/local/bin/etcd
      copy_with_libs /usr/bin/etcdctl "$tmp/$flavor" /usr/local/bin/etcdctl
    done
    base_files "$tmp/distroless" /sbin/nologin
    base_files "$tmp/shell" /bin/sh
    add_busybox "$tmp/shell"
    base_files "$tmp/tools" /bin/sh
    add_busybox "$tmp/tools"
    rm -rf "$dir" && mkdir -p "$dir"
    for flavor in distroless shell tools; do pack_rootfs "$tmp/$flavor" "$dir/$flavor.tar"; done
    etcd_version >"$dir/etcd-version"
    rm -rf "$tmp"
    touch "$dir/done"
  fi
  exec 8>&-
  echo "$dir"
}

# Imports the three images into node I's daemon.
import_images() {
  local i=$1 dir=$2
  docker_node "$i" import --change "ENV $IMAGE_PATH_ENV" "$dir/shell.tar" "$ETCD_SHELL_IMAGE" >/dev/null &&
    docker_node "$i" import --change "ENV $IMAGE_PATH_ENV" "$dir/distroless.tar" "$ETCD_DISTROLESS_IMAGE" >/dev/null &&
    docker_node "$i" import --change "ENV $IMAGE_PATH_ENV" "$dir/tools.tar" "$TOOLS_IMAGE" >/dev/null
}

# ----------------------------------------------------------------------------------------------
# Users, SSH keys, PKI
# ----------------------------------------------------------------------------------------------

# Users live on the host and are shared by all nodes. The password field must not start with
# "!" (locked): without PAM, sshd refuses key logins for locked accounts.
ensure_users() {
  getent group docker >/dev/null || groupadd --system docker
  if ! id "$SSH_USER" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash --groups docker "$SSH_USER"
  fi
  id -nG "$SSH_USER" | grep -qw docker || usermod -aG docker "$SSH_USER"
  if ! id "$NODOCKER_USER" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash "$NODOCKER_USER"
  fi
  if id -nG "$NODOCKER_USER" | grep -qw docker; then gpasswd -d "$NODOCKER_USER" docker >/dev/null; fi
  local user
  for user in "$SSH_USER" "$NODOCKER_USER"; do
    [[ $(getent shadow "$user" | cut -d: -f2) == '*' ]] || usermod -p '*' "$user"
  done
}

# Client keys of the cluster (all in <state>/ssh):
#   id_ed25519         authorized for both users
#   wrong_ed25519      not authorized (auth-failure tests)
#   user_ca            SSH user CA, trusted by every sshd (TrustedUserCAKeys)
#   cert_ed25519       key that works only with cert_ed25519-cert.pub (principal rkets)
make_ssh_keys() {
  local ssh=$STATE/ssh key
  mkdir -p "$ssh"
  for key in id_ed25519 wrong_ed25519 user_ca cert_ed25519; do
    ssh-keygen -q -t ed25519 -N '' -C "rke-ts-test-$NAME-$key" -f "$ssh/$key"
  done
  ssh-keygen -q -s "$ssh/user_ca" -I "rke-ts-test-$NAME" -n "$SSH_USER" -V -5m:+365d "$ssh/cert_ed25519.pub"
  # sshd reads this file as the logging-in user: world-readable, owned by root.
  install -m 0644 "$ssh/id_ed25519.pub" "$ssh/authorized_keys"
  : >"$ssh/known_hosts"
}

# Signs a certificate with the cluster CA: sign_cert NAME SUBJECT EXTENSIONS...
sign_cert() {
  local pki=$STATE/pki name=$1 subject=$2
  shift 2
  printf '%s\n' '[v3]' "$@" >"$pki/$name.ext"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/$name-key.pem" 2>/dev/null
  openssl req -new -config "$pki/req.cnf" -key "$pki/$name-key.pem" -subj "$subject" -out "$pki/$name.csr"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/kube-ca.pem" -CAkey "$pki/kube-ca-key.pem" \
    -CAserial "$pki/kube-ca.srl" -CAcreateserial -days 365 -extfile "$pki/$name.ext" -extensions v3 \
    -out "$pki/$name.pem" 2>/dev/null
  rm -f "$pki/$name.csr" "$pki/$name.ext"
  chmod 0600 "$pki/$name-key.pem"
}

# RKE's PKI, EC P-256 instead of RSA for speed: kube-ca, kube-node, one kube-etcd-<ip> per node.
make_pki() {
  local pki=$STATE/pki
  mkdir -p "$pki"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/kube-ca-key.pem" 2>/dev/null
  chmod 0600 "$pki/kube-ca-key.pem"
  # Own minimal config: independent of the host's openssl.cnf.
  printf '%s\n' '[req]' 'distinguished_name=dn' '[dn]' '[v3]' \
    'basicConstraints=critical,CA:TRUE' 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature' \
    'subjectKeyIdentifier=hash' >"$pki/req.cnf"
  openssl req -x509 -new -key "$pki/kube-ca-key.pem" -subj /CN=kube-ca -days 365 \
    -config "$pki/req.cnf" -extensions v3 -out "$pki/kube-ca.pem"
  sign_cert kube-node /O=system:nodes/CN=system:node \
    'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature' \
    'extendedKeyUsage=clientAuth,serverAuth'
}

make_etcd_cert() {
  local address=$1
  sign_cert "kube-etcd-$(dashed "$address")" /CN=kube-etcd \
    'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature' \
    'extendedKeyUsage=clientAuth,serverAuth' "subjectAltName=IP:$address,IP:127.0.0.1,DNS:localhost"
}

# Copies the whole PKI into node I's /etc/kubernetes/ssl (certs 0644, keys 0600).
install_pki() {
  local ssl
  ssl=$(node_root "$1")/etc/kubernetes/ssl
  mkdir -p "$ssl"
  cp -p "$STATE"/pki/*.pem "$ssl/"
}

# ----------------------------------------------------------------------------------------------
# Network: one bridge per cluster, one netns + veth per node
# ----------------------------------------------------------------------------------------------

# FORWARD rules tagged with the cluster, so a host dockerd's DROP policy does not cut
# node-to-node traffic (bridged packets go through iptables when br_netfilter is loaded).
iptables_rules() {
  local action=$1 br
  br=$(bridge_name "$SLOT")
  command -v iptables >/dev/null || return 0
  if [[ $action == add ]]; then
    iptables -w -I FORWARD -i "$br" -m comment --comment "rke-ts:$NAME" -j ACCEPT &&
      iptables -w -I FORWARD -o "$br" -m comment --comment "rke-ts:$NAME" -j ACCEPT ||
      log "warning: could not add iptables FORWARD rules for $br"
  else
    local dir
    for dir in -i -o; do
      while iptables -w -D FORWARD "$dir" "$br" -m comment --comment "rke-ts:$NAME" -j ACCEPT 2>/dev/null; do :; done
    done
  fi
}

create_bridge() {
  local br
  br=$(bridge_name "$SLOT")
  ip link add "$br" type bridge
  ip addr add "10.177.$SLOT.1/24" dev "$br"
  ip link set "$br" up
  iptables_rules add
}

create_node_network() {
  local i=$1 ns veth
  ns=$(netns_name "$SLOT" "$i")
  veth=$(veth_name "$SLOT" "$i")
  ip netns add "$ns"
  ip link add "$veth" type veth peer name "${veth}p"
  ip link set "${veth}p" netns "$ns"
  ip -n "$ns" link set "${veth}p" name eth0
  ip -n "$ns" addr add "$(node_address "$SLOT" "$i")/24" dev eth0
  ip -n "$ns" link set lo up
  ip -n "$ns" link set eth0 up
  # ip_forward only silences dockerd's "IPv4 forwarding is disabled" warning on every `docker
  # run` (the netns has no route beyond the cluster subnet); the nodes speak IPv4 only.
  nsenter --net="/var/run/netns/$ns" -- sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward
    echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6 2>/dev/null || true'
  ip link set "$veth" master "$(bridge_name "$SLOT")" up
}

# ----------------------------------------------------------------------------------------------
# Nodes
# ----------------------------------------------------------------------------------------------

# Directories, sshd config and host key of node I.
prepare_node() {
  local i=$1 dir root address mount
  dir=$(node_dir "$i")
  root=$(node_root "$i")
  address=$(node_address "$SLOT" "$i")
  for mount in "${NODE_MOUNTS[@]}"; do
    mkdir -p "$mount" "$root$mount" # the host needs the mount point, the node its content
  done
  install -d -m 0755 "$root/run" "$root/run/sshd" # sshd's privilege separation dir
  mkdir -p "$dir/docker"
  echo '{}' >"$dir/daemon.json" # keeps the host's /etc/docker/daemon.json out
  ssh-keygen -q -t ed25519 -N '' -C "rke-ts-test-$NAME-n$i" -f "$dir/ssh_host_ed25519_key"
  echo "$address $(cut -d' ' -f1,2 "$dir/ssh_host_ed25519_key.pub")" >>"$STATE/ssh/known_hosts"
  cat >"$dir/sshd_config" <<EOF
ListenAddress $address
Port 22
HostKey $dir/ssh_host_ed25519_key
PidFile $dir/sshd.pid
UsePAM no
PermitRootLogin no
AllowUsers $SSH_USER $NODOCKER_USER
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile $STATE/ssh/authorized_keys
TrustedUserCAKeys $STATE/ssh/user_ca.pub
# The state dir may sit below world-writable /var/tmp, which StrictModes would reject.
StrictModes no
AllowStreamLocalForwarding yes
AllowTcpForwarding yes
X11Forwarding no
PrintMotd no
PrintLastLog no
MaxStartups 100:30:200
MaxSessions 100
Subsystem sftp internal-sftp
LogLevel VERBOSE
EOF
  install_pki "$i"
}

# Starts node I's holder: it enters the node's netns, unshares a private mount namespace and
# runs `_node-main` there, which mounts the node's directories and starts dockerd and sshd.
# (`ip netns exec` is not used: it remounts /sys, and dockerd then cannot find its cgroups.)
start_node() {
  local i=$1 dir ns
  dir=$(node_dir "$i")
  ns=$(netns_name "$SLOT" "$i")
  rm -f "$dir/holder.pid"
  # setsid + redirected stdio: the holder outlives this script and must not keep the caller's
  # pipes open (the test runner waits for them to close).
  setsid nsenter --net="/var/run/netns/$ns" -- unshare --mount --propagation private -- \
    "$SCRIPT_PATH" _node-main "$NAME" "$i" </dev/null >>"$dir/node.log" 2>&1 &
}

# Runs inside the node's namespaces (see start_node). Stays alive as the holder of the mount
# namespace; bash reaps dockerd/sshd if they die.
node_main() {
  local i=$1 dir root mount
  dir=$(node_dir "$i")
  root=$(node_root "$i")
  echo $$ >"$dir/holder.pid"
  for mount in "${NODE_MOUNTS[@]}"; do
    mount --bind "$root$mount" "$mount"
  done
  dockerd --config-file "$dir/daemon.json" \
    --host unix:///var/run/docker.sock --group docker \
    --data-root "$dir/docker" --exec-root /run/docker --pidfile "$dir/dockerd.pid" \
    --bridge=none --iptables=false --ip-masq=false --ip-forward=false \
    --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "/rke-ts/$NAME/n$i" \
    --storage-driver overlay2 >>"$dir/dockerd.log" 2>&1 &
  /usr/sbin/sshd -D -f "$dir/sshd_config" -E "$dir/sshd.log" &
  sleep infinity &
  wait
}

docker_node() {
  local i=$1
  shift
  env -u DOCKER_HOST -u DOCKER_CONTEXT -u DOCKER_TLS_VERIFY -u DOCKER_CERT_PATH \
    "$DOCKER_CLI" -H "unix://$(node_socket "$i")" "$@"
}

# Retries PROBE... on node I for up to SECONDS; on timeout logs WHAT and the tails of the
# node's LOG_FILE and node.log.
wait_for() {
  local i=$1 seconds=$2 what=$3 log_file=$4 deadline
  shift 4
  deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then
      log "$what; log tail:"
      tail -n 30 "$(node_dir "$i")/$log_file" "$(node_dir "$i")/node.log" >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

tcp_port_open() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# Waits until node I's dockerd answers.
wait_dockerd() {
  wait_for "$1" "$DOCKERD_WAIT_SECONDS" "dockerd of node $1 did not answer within ${DOCKERD_WAIT_SECONDS}s" dockerd.log docker_node "$1" version
}

# Waits until sshd of node I accepts connections on port 22.
wait_sshd() {
  local address
  address=$(node_address "$SLOT" "$1")
  wait_for "$1" 20 "sshd of node $1 does not listen on $address:22" sshd.log tcp_port_open "$address" 22
}

# Starts nodes FROM..TO (dirs, network, daemons) and loads the images into them.
bring_up_nodes() {
  local from=$1 to=$2 images i pids=() failed=0
  images=$(cmd_images)
  for ((i = from; i <= to; i++)); do
    prepare_node "$i"
    create_node_network "$i"
    start_node "$i"
  done
  for ((i = from; i <= to; i++)); do wait_dockerd "$i" || failed=1; done
  ((failed == 0)) || die "dockerd did not start"
  log "dockerd up on nodes $from..$to; importing images"
  for ((i = from; i <= to; i++)); do
    import_images "$i" "$images" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || failed=1; done
  ((failed == 0)) || die "importing images failed"
  for ((i = from; i <= to; i++)); do wait_sshd "$i" || failed=1; done
  ((failed == 0)) || die "sshd did not start"
}

# Node I's cgroup dirs (docker --cgroup-parent): one per controller on cgroup v1, one on v2.
node_cgroups() {
  local dir
  for dir in /sys/fs/cgroup/rke-ts/"$NAME"/n"$1" /sys/fs/cgroup/*/rke-ts/"$NAME"/n"$1"; do
    [[ -d $dir ]] && echo "$dir"
  done
  return 0
}

# All pids that belong to node I: everything in its netns (holder, dockerd, containerd, shims,
# sshd and sessions, host-network containers) plus container processes in its cgroups.
node_pids() {
  local i=$1 ns procs
  ns=$(netns_name "$SLOT" "$i")
  { [[ -e /var/run/netns/$ns ]] && ip netns pids "$ns" 2>/dev/null
    for procs in $(node_cgroups "$i"); do
      find "$procs" -name cgroup.procs -exec cat {} + 2>/dev/null
    done
  } | sort -un
}

# Kills every process of node I (SIGKILL: a crashed machine) and waits until they are gone.
# Pids go to KILLED_PIDS for wait_reaped.
KILLED_PIDS=()
kill_node_processes() {
  local i=$1 pids attempt
  for ((attempt = 0; attempt < 100; attempt++)); do
    pids=$(node_pids "$i" || true)
    [[ -z $pids ]] && break
    # shellcheck disable=SC2206
    KILLED_PIDS+=($pids)
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.1
  done
  [[ -z $pids ]] || log "warning: node $i still has processes: $(echo $pids)"
  rm -f "$(node_dir "$i")"/{holder,dockerd,sshd}.pid
}

# Killed daemons are orphans of PID 1, which may reap them lazily; wait so that `pgrep dockerd`
# no longer lists them as <defunct> once down returns.
wait_reaped() {
  local attempt pid alive
  for ((attempt = 0; attempt < 50; attempt++)); do
    alive=()
    for pid in "${KILLED_PIDS[@]}"; do [[ -e /proc/$pid ]] && alive+=("$pid"); done
    ((${#alive[@]} == 0)) && break
    sleep 0.1
  done
  KILLED_PIDS=()
}

remove_node_cgroups() {
  local dir
  for dir in $(node_cgroups "$1"); do
    find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

# ----------------------------------------------------------------------------------------------
# etcd
# ----------------------------------------------------------------------------------------------

etcd_initial_cluster() {
  local n address parts=()
  for n in $ETCD_NODES; do
    address=$(node_address "$SLOT" "$n")
    parts+=("etcd-$address=https://$address:2380")
  done
  local IFS=,
  echo "${parts[*]}"
}

# The `etcd` container as RKE creates it (hostname_override defaults to the address).
run_etcd_container() {
  local i=$1 address cert key ca=/etc/kubernetes/ssl/kube-ca.pem
  address=$(node_address "$SLOT" "$i")
  cert=/etc/kubernetes/ssl/kube-etcd-$(dashed "$address").pem
  key=/etc/kubernetes/ssl/kube-etcd-$(dashed "$address")-key.pem
  docker_node "$i" run -d --name etcd --network host --restart always \
    -v /var/lib/etcd:/var/lib/rancher/etcd:z -v /etc/kubernetes:/etc/kubernetes:z \
    -e ETCDCTL_API=3 -e "ETCDCTL_CACERT=$ca" -e "ETCDCTL_CERT=$cert" -e "ETCDCTL_KEY=$key" \
    -e ETCDCTL_ENDPOINTS=https://127.0.0.1:2379 \
    "$ETCD_IMAGE" /usr/local/bin/etcd --peer-client-cert-auth --client-cert-auth \
    --data-dir=/var/lib/rancher/etcd/ --name="etcd-$address" \
    --initial-cluster="$(etcd_initial_cluster)" --initial-cluster-state=new \
    --initial-cluster-token=etcd-cluster-1 \
    --listen-client-urls=https://0.0.0.0:2379 --advertise-client-urls="https://$address:2379" \
    --listen-peer-urls=https://0.0.0.0:2380 --initial-advertise-peer-urls="https://$address:2380" \
    --trusted-ca-file="$ca" --cert-file="$cert" --key-file="$key" \
    --peer-trusted-ca-file="$ca" --peer-cert-file="$cert" --peer-key-file="$key" \
    --election-timeout=5000 --heartbeat-interval=500 >/dev/null
}

# Host etcdctl against node I, with the node's etcd cert (or kube-node on non-etcd nodes).
etcdctl_node() {
  local i=$1 address ssl cert key
  shift
  address=$(node_address "$SLOT" "$i")
  ssl=$(node_root "$i")/etc/kubernetes/ssl
  cert=$ssl/kube-etcd-$(dashed "$address").pem
  key=$ssl/kube-etcd-$(dashed "$address")-key.pem
  [[ -f $cert ]] || { cert=$ssl/kube-node.pem; key=$ssl/kube-node-key.pem; }
  env -u ETCDCTL_ENDPOINTS -u ETCDCTL_CACERT -u ETCDCTL_CERT -u ETCDCTL_KEY ETCDCTL_API=3 \
    /usr/bin/etcdctl --endpoints="https://$address:2379" --cacert="$ssl/kube-ca.pem" \
    --cert="$cert" --key="$key" "$@"
}

wait_etcd_healthy() {
  local first n deadline=$((SECONDS + ETCD_WAIT_SECONDS)) out
  first=${ETCD_NODES%% *}
  [[ -n $first ]] || return 0
  until out=$(etcdctl_node "$first" --dial-timeout=2s --command-timeout=5s endpoint health --cluster 2>&1); do
    if ((SECONDS > deadline)); then
      log "etcd is not healthy after ${ETCD_WAIT_SECONDS}s:"
      echo "$out" >&2
      for n in $ETCD_NODES; do
        log "docker logs etcd, node $n (tail):"
        docker_node "$n" logs --tail 15 etcd 2>&1 | sed 's/^/    /' >&2 || true
      done
      return 1
    fi
    sleep 0.5
  done
}

# ----------------------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------------------

cmd_up() {
  local count slot=1 etcd_nodes='' flavor=shell i
  NAME=${1:-}
  count=${2:-}
  validate_name "$NAME"
  [[ $count =~ ^[0-9]+$ ]] && ((count >= 1 && count <= 50)) || die "COUNT must be 1..50"
  shift 2
  while (($# > 0)); do
    case $1 in
      --slot) slot=${2:-}; shift 2 ;;
      --etcd-nodes) etcd_nodes=${2:-}; shift 2 ;;
      --image) flavor=${2:-}; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  [[ $slot =~ ^[0-9]+$ ]] && ((slot >= 1 && slot <= 20)) || die "--slot must be 1..20"
  [[ $flavor == shell || $flavor == distroless ]] || die "--image must be shell or distroless"
  if [[ -z $etcd_nodes ]]; then etcd_nodes=$(seq -s ' ' 1 "$count")
  elif [[ $etcd_nodes == none ]]; then etcd_nodes=''
  else
    [[ $etcd_nodes =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--etcd-nodes must look like 1,2,3"
    etcd_nodes=${etcd_nodes//,/ }
    for i in $etcd_nodes; do ((i >= 1 && i <= count)) || die "--etcd-nodes: no node $i"; done
  fi

  local started=$SECONDS
  cmd_down "$NAME"
  [[ $(missing_packages) == '' ]] || cmd_install_deps
  local br
  br=$(bridge_name "$slot")
  if ip link show "$br" >/dev/null 2>&1 || ip netns list | grep -q "^rkets$slot-n"; then
    local owners
    owners=$(grep -l "^SLOT=$slot\$" "$TEST_ROOT"/*/cluster.env 2>/dev/null | xargs -r -n1 dirname | xargs -r -n1 basename | xargs echo)
    die "slot $slot is in use by another cluster (${owners:-unknown: no state under $TEST_ROOT}); run its down or pick another --slot"
  fi
  if ip -4 route show root "10.177.$slot.0/24" | grep -q .; then
    die "10.177.$slot.0/24 is already routed on this host; pick another --slot"
  fi

  [[ $TEST_ROOT == /* && $TEST_ROOT != / ]] || die "RKE_TS_TEST_ROOT must be an absolute path"
  install -d -m 0755 "$TEST_ROOT"
  STATE=$(state_dir "$NAME")
  install -d -m 0755 "$STATE"
  SLOT=$slot COUNT=$count ETCD_NODES=$etcd_nodes IMAGE_FLAVOR=$flavor
  local version
  version=v$(etcd_version)
  ETCD_SHELL_IMAGE=rke-ts.test/etcd:$version
  ETCD_DISTROLESS_IMAGE=rke-ts.test/etcd:$version-distroless
  if [[ $flavor == shell ]]; then ETCD_IMAGE=$ETCD_SHELL_IMAGE; else ETCD_IMAGE=$ETCD_DISTROLESS_IMAGE; fi
  # State first: from here on `down NAME` knows what to clean up.
  save_state

  (
    exec 9>"$TEST_ROOT/.users.lock"
    flock 9
    ensure_users
  )
  make_ssh_keys
  make_pki
  for i in $ETCD_NODES; do make_etcd_cert "$(node_address "$SLOT" "$i")"; done
  create_bridge
  log "starting $count node(s) of $NAME on 10.177.$SLOT.0/24"
  bring_up_nodes 1 "$COUNT"
  if [[ -n $ETCD_NODES ]]; then
    for i in $ETCD_NODES; do run_etcd_container "$i"; done
    log "etcd started on nodes $(echo $ETCD_NODES); waiting for health"
    wait_etcd_healthy || die "etcd did not become healthy"
  fi
  log "cluster $NAME is up ($((SECONDS - started))s)"
}

cmd_down() {
  NAME=${1:-}
  validate_name "$NAME"
  local dir i ns veth br
  dir=$(state_dir "$NAME")
  [[ -f $dir/cluster.env ]] || { rm -rf "$dir"; return 0; }
  load_state "$NAME"
  for ((i = 1; i <= COUNT; i++)); do
    kill_node_processes "$i"
    remove_node_cgroups "$i"
    ns=$(netns_name "$SLOT" "$i")
    veth=$(veth_name "$SLOT" "$i")
    ip netns del "$ns" 2>/dev/null || true
    ip link del "$veth" 2>/dev/null || true
  done
  # add-node may have died between creating a node and recording it.
  ns=$(netns_name "$SLOT" $((COUNT + 1)))
  if [[ -e /var/run/netns/$ns ]]; then
    COUNT=$((COUNT + 1)) && kill_node_processes "$COUNT" && remove_node_cgroups "$COUNT"
    ip netns del "$ns" 2>/dev/null || true
    ip link del "$(veth_name "$SLOT" "$COUNT")" 2>/dev/null || true
  fi
  rmdir /sys/fs/cgroup/rke-ts/"$NAME" /sys/fs/cgroup/*/rke-ts/"$NAME" 2>/dev/null || true
  rmdir /sys/fs/cgroup/rke-ts /sys/fs/cgroup/*/rke-ts 2>/dev/null || true # kept while another cluster uses it
  br=$(bridge_name "$SLOT")
  ip link del "$br" 2>/dev/null || true
  iptables_rules del
  wait_reaped
  rm -rf "$dir"
}

cmd_add_node() {
  load_state "${1:-}"
  local i=$((COUNT + 1)) address
  address=$(node_address "$SLOT" "$i")
  make_etcd_cert "$address"
  # Like `rke up` after adding a node: every node gets the complete set of certificates.
  local n
  for ((n = 1; n < i; n++)); do install_pki "$n"; done
  log "adding node $i ($address) to $NAME"
  bring_up_nodes "$i" "$i"
  COUNT=$i
  save_state
  echo "$i"
}

cmd_kill_node() {
  load_state "${1:-}"
  require_node "${2:-}"
  kill_node_processes "$2"
  wait_reaped
  if [[ ${3:-} == --unplug ]]; then ip link set "$(veth_name "$SLOT" "$2")" down; fi
}

cmd_env() {
  load_state "${1:-}"
  local i address
  cat <<EOF
RKETS_NAME=$NAME
RKETS_SLOT=$SLOT
RKETS_STATE_DIR=$STATE
RKETS_SCRIPT=$SCRIPT_PATH
RKETS_BRIDGE=$(bridge_name "$SLOT")
RKETS_HOST_ADDRESS=10.177.$SLOT.1
RKETS_NODE_COUNT=$COUNT
RKETS_ETCD_NODES=$(echo $ETCD_NODES | tr ' ' ,)
RKETS_SSH_USER=$SSH_USER
RKETS_NODOCKER_USER=$NODOCKER_USER
RKETS_SSH_KEY=$STATE/ssh/id_ed25519
RKETS_WRONG_KEY=$STATE/ssh/wrong_ed25519
RKETS_CERT_KEY=$STATE/ssh/cert_ed25519
RKETS_CERT=$STATE/ssh/cert_ed25519-cert.pub
RKETS_USER_CA=$STATE/ssh/user_ca.pub
RKETS_KNOWN_HOSTS=$STATE/ssh/known_hosts
RKETS_PKI_DIR=$STATE/pki
RKETS_IMAGE_FLAVOR=$IMAGE_FLAVOR
RKETS_ETCD_IMAGE=$ETCD_IMAGE
RKETS_ETCD_SHELL_IMAGE=$ETCD_SHELL_IMAGE
RKETS_ETCD_DISTROLESS_IMAGE=$ETCD_DISTROLESS_IMAGE
RKETS_TOOLS_IMAGE=$TOOLS_IMAGE
EOF
  for ((i = 1; i <= COUNT; i++)); do
    address=$(node_address "$SLOT" "$i")
    cat <<EOF
RKETS_NODE_${i}_ADDRESS=$address
RKETS_NODE_${i}_NETNS=$(netns_name "$SLOT" "$i")
RKETS_NODE_${i}_ROOT=$(node_root "$i")
RKETS_NODE_${i}_DOCKER_SOCKET=$(node_socket "$i")
RKETS_NODE_${i}_ETCD=$(is_etcd_node "$i" && echo 1 || echo 0)
EOF
  done
}

main() {
  local cmd=${1:-}
  (($# > 0)) && shift
  [[ $cmd == install-deps || $cmd == help || -z $cmd || $EUID -eq 0 ]] || die "must run as root"
  case $cmd in
    install-deps) cmd_install_deps ;;
    images) cmd_images ;;
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    add-node) cmd_add_node "$@" ;;
    kill-node) cmd_kill_node "$@" ;;
    stop-etcd) load_state "${1:-}"; require_node "${2:-}"; docker_node "$2" stop etcd >/dev/null ;;
    start-etcd) load_state "${1:-}"; require_node "${2:-}"; docker_node "$2" start etcd >/dev/null ;;
    etcdctl) load_state "${1:-}"; require_node "${2:-}"; local i=$2; shift 2; etcdctl_node "$i" "$@" ;;
    docker) load_state "${1:-}"; require_node "${2:-}"; local i=$2; shift 2; docker_node "$i" "$@" ;;
    env) cmd_env "$@" ;;
    _node-main) load_state "$1"; NAME=$1; node_main "$2" ;;
    help | -h | --help | '') sed -n '2,/^set -euo/p' "$SCRIPT_PATH" | sed '$d; s/^# \{0,1\}//' ;;
    *) die "unknown command '$cmd' (see: $0 help)" ;;
  esac
}

main "$@"
