#!/usr/bin/env bash
# A Slurm cluster of several nodes on this one machine, for tessera's multi-node tests and for
# trying multi-node job scripts by hand:
#
#   scripts/slurm/test-cluster.sh start /tmp/tessera-nodes [NODES]    # then: . /tmp/tessera-nodes/env.sh
#   scripts/slurm/test-cluster.sh stop /tmp/tessera-nodes
#   scripts/slurm/test-cluster.sh node-up /tmp/tessera-nodes 2   # node 2 again, after a test killed it
#
# Each node (tsnode1 .. tsnodeN, default 4) is a network namespace with a UTS namespace of its own
# (its hostname is the node's name) and one address, 10.77.S.(10 + i); veth pairs join them to a
# bridge that lives in a namespace of its own, and one more pair gives this host (where
# slurmctld runs and the clients are used) 10.77.S.1. S (20-249) comes from DIR, so two clusters
# from two directories use two subnets. Each node runs its own slurmd and declares
# TESSERA_SLURM_CPUS CPUs (default 2: four nodes of two tasks oversubscribe a small machine); the
# file system is the host's, as a cluster's shared one. munged is shared (start-cluster.sh's).
#
# Everything made is recorded in DIR/made (namespaces, links) and DIR/run (pid files); stop
# removes exactly that, and running it again, on a dead cluster or after a failed start, is fine.
# Needs root, iproute2 and the packages of scripts/install-deps.sh.
set -euo pipefail
script=test-cluster.sh
# shellcheck source-path=SCRIPTDIR source=cluster-common.sh disable=SC2034  # script: read by cluster-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/cluster-common.sh"

usage() { fail "usage: test-cluster.sh start DIR [NODES] | stop DIR | node-up DIR I"; }
[ $# -ge 2 ] || usage
action=$1
dir=$(realpath -m "$2")
nodes=${3:-4}
export SLURM_CONF=$dir/slurm.conf

# Names and addresses derived from DIR.
tag=$(printf '%s' "$dir" | md5sum | cut -c1-4)
subnet=10.77.$((0x${tag:0:2} % 230 + 20))
bridge_ns=tessera-$tag-net
host_link=ts$tag-host
node_ns() { echo "tessera-$tag-n$1"; }

record() { echo "$1 $2" >>"$dir/made"; }  # KIND NAME: something to remove at stop

# slurmd of node I in its namespaces: nsenter, not `ip netns exec`, which also makes a mount
# namespace with a fresh /sys, without the cgroup file system slurmd looks for; a UTS namespace
# too, so that the node (and every job step on it) has the node's hostname.
start_slurmd() {  # I
  local node=tsnode$1
  nsenter --net="/run/netns/$(node_ns "$1")" unshare --uts -- sh -c \
    'hostname "$1" && exec slurmd -f "$2" -N "$1"' sh "$node" "$dir/nodes/$node/slurm.conf"
}

# After a test killed node I (its slurmd and jobs): slurmd again; the node returns to service
# when it registers (ReturnToService=2).
node_up() {  # I
  local i=$1
  [ -f "$dir/nodes/tsnode$i/slurm.conf" ] || fail "no node tsnode$i in the cluster of $dir"
  alive "$dir/run/slurmd-tsnode$i.pid" || start_slurmd "$i"
  wait_for 90 "node tsnode$i did not become idle" "$dir/log/slurmd-tsnode$i.log" node_idle "tsnode$i"
  echo "$script: tsnode$i is up"
}

stop_cluster() {
  cancel_jobs "$dir"
  local pidfile kind name
  for pidfile in "$dir"/run/slurmd-*.pid; do
    [ -e "$pidfile" ] && stop_daemon slurmd "$pidfile"
  done
  stop_daemon slurmctld "$dir/run/slurmctld.pid"
  if [ -f "$dir/made" ]; then
    # Newest first: the nodes' namespaces, the bridge's, then the host's link (if it is left).
    tac "$dir/made" | while read -r kind name; do
      case $kind in
        netns) ip netns del "$name" 2>/dev/null && echo "$script: removed namespace $name" ;;
        link) ip link del "$name" 2>/dev/null && echo "$script: removed link $name" ;;
      esac
    done
    rm -f "$dir/made"
  fi
  stop_munge_if_last "$dir"
}

start_cluster() {
  [[ $nodes =~ ^[1-9][0-9]?$ ]] || fail "NODES must be 1 to 99, not '$nodes'"
  check_prerequisites ip unshare
  alive "$dir/run/slurmctld.pid" &&
    fail "a cluster from $dir is already running; stop it with scripts/slurm/test-cluster.sh stop $dir"
  [ ! -s "$dir/made" ] || stop_cluster >/dev/null  # what a failed start left behind
  ip netns list | grep -q "^$bridge_ns\b" &&
    fail "namespace $bridge_ns exists but $dir does not record it; remove it (ip netns del $bridge_ns) or pick another DIR"
  choose_ports 16917
  local cpus=${TESSERA_SLURM_CPUS:-2} started i ns node
  started=$(date +%s%N)
  rm -rf "${dir:?}/state" "${dir:?}"/spool-* "${dir:?}/log" "${dir:?}/nodes"
  mkdir -p "$dir"/{state,run,log}
  : >"$dir/made"

  # The network: a bridge in a namespace of its own, the host and every node joined to it.
  ip netns add "$bridge_ns" && record netns "$bridge_ns"
  ip -n "$bridge_ns" link add br0 type bridge
  ip -n "$bridge_ns" link set br0 up
  ip link add "$host_link" type veth peer name host netns "$bridge_ns" && record link "$host_link"
  ip -n "$bridge_ns" link set host master br0 up
  ip addr add "$subnet.1/24" dev "$host_link"
  ip link set "$host_link" up
  local memory_mb node_lines="" names=""
  memory_mb=$(awk -v n="$nodes" '/MemTotal/ {printf "%d", $2 / 1024 * 0.9 / n}' /proc/meminfo)
  for i in $(seq "$nodes"); do
    ns=$(node_ns "$i")
    node=tsnode$i
    ip netns add "$ns" && record netns "$ns"
    ip link add eth0 netns "$ns" type veth peer name "n$i" netns "$bridge_ns"
    ip -n "$bridge_ns" link set "n$i" master br0 up
    ip -n "$ns" addr add "$subnet.$((10 + i))/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    node_lines+="NodeName=$node NodeAddr=$subnet.$((10 + i)) CPUs=$cpus RealMemory=$memory_mb State=UNKNOWN"$'\n'
    names+=${names:+,}$node
  done
  write_slurm_conf "$dir" "localhost($subnet.1)" "-%n" \
    "${node_lines}PartitionName=debug Nodes=$names Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO"
  start_munge "$dir"
  slurmctld -f "$SLURM_CONF"  # daemonizes; writes run/slurmctld.pid
  wait_for 60 "slurmctld did not come up" "$dir/log/slurmctld.log" controller_up
  for i in $(seq "$nodes"); do
    node=tsnode$i
    mkdir -p "$dir/spool-$node" "$dir/nodes/$node/pmix"
    # Each node reads its own copy of slurm.conf, beside an mpi.conf of its own: PMIx keeps its
    # client directories under PMIxCliTmpDirBase, named by job and step only, which nodes that
    # share /tmp would otherwise both create.
    cp "$SLURM_CONF" "$dir/nodes/$node/slurm.conf"
    echo "PMIxCliTmpDirBase=$dir/nodes/$node/pmix" >"$dir/nodes/$node/mpi.conf"
    start_slurmd "$i"
  done
  for i in $(seq "$nodes"); do
    wait_for 60 "node tsnode$i did not become idle" "$dir/log/slurmd-tsnode$i.log" node_idle "tsnode$i"
  done
  echo "$script: Slurm up in $((($(date +%s%N) - started) / 1000000)) ms: $nodes nodes" \
    "(tsnode1-$nodes, $subnet.11-$((10 + nodes)), $cpus CPUs each), partition debug, port $ctld_port;" \
    "use it with: . $dir/env.sh"
}

case $action in
  start) start_cluster ;;
  stop) stop_cluster ;;
  node-up) node_up "${3:?usage: test-cluster.sh node-up DIR I}" ;;
  *) usage ;;
esac
