#!/usr/bin/env bash
# A Slurm cluster on this machine, for genbench's tests and for trying
# `genbench submit` without a real cluster: one node (the default), or N
# emulated nodes, each in its own network and UTS namespace.
#
#   slurm/local-cluster.sh start [--nodes N] [--max-array-size M]
#        install the Debian packages if missing, write the config, start munged
#        + slurmctld + slurmd(s), and wait until every node is idle (~20 s).
#        --nodes 1 (default): one node named after this host, NodeAddr 127.0.0.1.
#        --nodes N (N >= 2): see "Multi-node" below.
#        --max-array-size M: MaxArraySize=M in slurm.conf (default: Slurm's, 1001;
#        MaxJobCount is raised with it when needed).
#        Starting again with the same settings returns at once; with other
#        settings (e.g. --nodes 2 while a 1-node cluster runs in the same
#        GENBENCH_SLURM_DIR) the running cluster is stopped and replaced.
#   slurm/local-cluster.sh stop
#        stop the daemons (queued jobs are kept in the state directory for the
#        next start); for a multi-node cluster also its Ray processes, every
#        process left in its namespaces, and the namespaces, links, bridge and
#        host-name entries it made - nothing else.
#   slurm/local-cluster.sh status   print the daemons, the nodes and `sinfo`;
#                                   exit 0 if up, 3 if not
#
# Multi-node (--nodes N): a bridge ($GENBENCH_SLURM_BRIDGE, gbbr0) with a private
# subnet ($GENBENCH_SLURM_SUBNET, 10.213.0.0/24; refused if any address or route
# of this host overlaps it). The host gets .1 on the bridge and runs munged and
# slurmctld (SlurmctldHost=$(hostname -s)(10.213.0.1)). Node K (gbnode1, gbnode2,
# ...) is a network namespace "gbnodeK" joined to the bridge by a veth pair, with
# address .(10+K), loopback up, no default route (traffic stays on the bridge),
# and one slurmd that runs with hostname gbnodeK (UTS namespace), its own spool,
# pid and log files (%n in slurm.conf), pinned with taskset to its share of the
# cores (2 cores, 2 nodes: one each; with more nodes than cores they share) and
# given its share of the memory. Job steps inherit all of that, so
# `srun -N 2 hostname` prints gbnode1 and gbnode2. Names resolve everywhere:
# /etc/netns/gbnodeK/hosts inside the nodes (bind-mounted over /etc/hosts for
# every process this script starts in a node, as `ip netns exec` does) and a
# marked block in the host's /etc/hosts, removed by `stop`.
# The filesystem is shared (results, checkpoints, rendezvous files), as on a
# cluster; one munged serves every node through its socket in the cluster dir.
# Only one multi-node cluster per bridge/node-name prefix at a time.
#
#   slurm/local-cluster.sh exec K CMD [ARG...]
#        run CMD as a process of node K: in its namespaces, with its hostname
#        and cores (e.g. a Ray driver: `exec 1 python driver.py`).
#   slurm/local-cluster.sh ray-start    a Ray cluster on the same nodes: head in
#        gbnode1 (GCS on 10.213.0.11:$GENBENCH_RAY_PORT), a worker raylet in
#        every other node, each with its cores (--num-cpus) and its own temp dir
#        (/tmp/genbench-ray/gbnodeK). Token authentication (Ray 2.60): the token
#        is in $DIR/ray/auth_token; a driver needs
#          export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=$DIR/ray/auth_token
#          export RAY_ADDRESS=10.213.0.11:6379
#        (printed by ray-start, and in $DIR/ray/env), e.g.
#          genbench run --launcher ray --address 10.213.0.11:6379 ...
#        The driver may run on the host (it reaches the nodes over the bridge)
#        or as a process of node 1 (`exec 1 ...`). Waits until every node has
#        joined (~25 s on 2 cores). Idempotent; after kill-node it starts only
#        the missing nodes.
#   slurm/local-cluster.sh ray-stop     end the Ray processes ray-start started
#        (their process trees, from pid files), and no other Ray on the machine.
#   slurm/local-cluster.sh node-down K  take node K's link down (a network
#        failure: its processes live on, unreachable); node-up K restores it.
#   slurm/local-cluster.sh kill-node K  kill every process in node K's network
#        namespace (slurmd, job steps, Ray) - a crashed machine. `start` again
#        (same settings) restarts only its slurmd, `ray-start` only its Ray node.
#
# Runs as root: Debian's slurmctld, slurmd, slurm-client and munge, with
# ProctrackType=proctrack/linuxproc, TaskPlugin=task/none and no accounting
# (sacct does not work); one partition with every node.
#
# Everything lives in $GENBENCH_SLURM_DIR (default /var/lib/genbench-slurm):
# slurm.conf, its own munge key and socket, state, spool, logs and pid files.
# Slurm's client commands read /etc/slurm/slurm.conf unless SLURM_CONF is set;
# that path is made a symlink to our slurm.conf when it does not exist (or
# already is our symlink) - except by a multi-node cluster outside the default
# dir. Otherwise `export SLURM_CONF=$DIR/slurm.conf` (start says so).
# A 1-node and a multi-node cluster can run side by side when the second has
# its own GENBENCH_SLURM_DIR and GENBENCH_SLURMCTLD_PORT (the tests do this,
# see tests/integration/multinode_cluster.py; slurmd ports do not clash: each
# node has its own network namespace).
#
# Environment: GENBENCH_SLURM_DIR, GENBENCH_SLURM_PARTITION (default debug),
# GENBENCH_SLURMCTLD_PORT (6817), GENBENCH_SLURMD_PORT (6818),
# GENBENCH_SLURM_START_TIMEOUT (seconds to wait for idle nodes, default 90);
# multi-node: GENBENCH_SLURM_SUBNET (10.213.0.0/24), GENBENCH_SLURM_BRIDGE
# (gbbr0), GENBENCH_SLURM_NODE_PREFIX (gbnode); Ray: GENBENCH_RAY (the ray
# command; default the repo's .venv/bin/ray, else ray on PATH),
# GENBENCH_RAY_PORT (6379), GENBENCH_RAY_TMP (/tmp/genbench-ray),
# GENBENCH_RAY_START_TIMEOUT (seconds, default 120).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
DIR="${GENBENCH_SLURM_DIR:-/var/lib/genbench-slurm}"
PARTITION="${GENBENCH_SLURM_PARTITION:-debug}"
CTLD_PORT="${GENBENCH_SLURMCTLD_PORT:-6817}"
SLURMD_PORT="${GENBENCH_SLURMD_PORT:-6818}"
START_TIMEOUT="${GENBENCH_SLURM_START_TIMEOUT:-90}"
SUBNET="${GENBENCH_SLURM_SUBNET:-10.213.0.0/24}"
BRIDGE="${GENBENCH_SLURM_BRIDGE:-gbbr0}"
PREFIX="${GENBENCH_SLURM_NODE_PREFIX:-gbnode}"
RAY_PORT="${GENBENCH_RAY_PORT:-6379}"
RAY_TMP="${GENBENCH_RAY_TMP:-/tmp/genbench-ray}"
RAY_START_TIMEOUT="${GENBENCH_RAY_START_TIMEOUT:-120}"
HOST="$(hostname -s)"
NODE="$HOST"            # the 1-node cluster's node
CONF="$DIR/slurm.conf"
MUNGE_SOCKET="$DIR/munge/munge.socket"
SYSTEM_CONF=/etc/slurm/slurm.conf
PACKAGES=(slurmctld slurmd slurm-client munge)
# What `start` was asked for (NODES, MAX_ARRAY) and what runs (RUN_NODES, from
# $DIR/settings, written by the start that made the running cluster).
NODES=1
MAX_ARRAY=""
RUN_NODES=1
# Shared by the multi-node clusters of this machine: which cluster dir owns a bridge.
OWNER_DIR=/run/genbench-local-cluster
HOSTS_BEGIN="# >>> genbench local-cluster $BRIDGE: names of its emulated nodes (removed by stop)"
HOSTS_END="# <<< genbench local-cluster $BRIDGE"

export SLURM_CONF="$CONF"

say() { echo "local-cluster: $*"; }
die() { echo "local-cluster: error: $*" >&2; exit 1; }

pid_alive() {  # pid_alive PIDFILE: the daemon named in PIDFILE is running
  local pid
  [ -s "$1" ] || return 1
  pid="$(cat "$1" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid"
}

alive() {  # alive PID: running; a zombie is not (this machine's init reaps late)
  kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [ "${stat:0:1}" != Z ]
}

load_settings() {  # RUN_NODES of the cluster in $DIR (1 when none was recorded)
  RUN_NODES=1
  if [ -s "$DIR/settings" ] && [[ "$(cat "$DIR/settings")" =~ nodes=([0-9]+) ]]; then
    RUN_NODES="${BASH_REMATCH[1]}"
  fi
}

settings_line() {
  local net=""
  [ "$NODES" -eq 1 ] || net=" subnet=$SUBNET bridge=$BRIDGE prefix=$PREFIX"
  echo "nodes=$NODES max_array_size=${MAX_ARRAY:-default} ctld_port=$CTLD_PORT slurmd_port=$SLURMD_PORT partition=$PARTITION$net"
}

# ---------------------------------------------------------------- addresses

# shellcheck disable=SC2086  # splitting the address on dots is the point
ip2int() { local IFS=.; set -- $1; echo $(( ($1 << 24) | ($2 << 16) | ($3 << 8) | $4 )); }
int2ip() { echo "$(( ($1 >> 24) & 255 )).$(( ($1 >> 16) & 255 )).$(( ($1 >> 8) & 255 )).$(( $1 & 255 ))"; }

cidr_range() {  # cidr_range A.B.C.D/L: "first last" address of that network, as integers
  local ip="${1%/*}" len="${1#*/}" n mask
  [[ "$1" == */* ]] || len=32
  n="$(ip2int "$ip")"
  mask=$(( len == 0 ? 0 : (0xFFFFFFFF << (32 - len)) & 0xFFFFFFFF ))
  echo "$(( n & mask )) $(( (n & mask) | (~mask & 0xFFFFFFFF) ))"
}

net_setup_vars() {  # NET_LEN, CTL_ADDR, ADDR[k] (k = 1..RUN_NODES) from SUBNET
  [[ "$SUBNET" =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}/([0-9]{1,2})$ ]] \
    || die "GENBENCH_SLURM_SUBNET=$SUBNET is not an IPv4 network like 10.213.0.0/24"
  NET_LEN="${SUBNET#*/}"
  local first last k
  read -r first last <<<"$(cidr_range "$SUBNET")"
  if [ "$NET_LEN" -lt 8 ] || [ "$NET_LEN" -gt 28 ]; then die "GENBENCH_SLURM_SUBNET: use a prefix length of 8 to 28"; fi
  [ $((first + 10 + RUN_NODES)) -lt "$last" ] || die "GENBENCH_SLURM_SUBNET=$SUBNET is too small for $RUN_NODES nodes"
  CTL_ADDR="$(int2ip $((first + 1)))"
  ADDR=()
  for k in $(seq "$RUN_NODES"); do ADDR[k]="$(int2ip $((first + 10 + k)))"; done
}

node_name() { echo "$PREFIX$1"; }
veth_name() { echo "veth-$PREFIX$1"; }  # the host end; the namespace end is eth0

node_cpus() {  # node_cpus K N: the CPU list node K of N is pinned to
  local -a cpus=()
  local list part a b i share
  list="$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status)"
  for part in ${list//,/ }; do
    a="${part%-*}"; b="${part#*-}"
    for ((i = a; i <= b; i++)); do cpus+=("$i"); done
  done
  if [ "$2" -ge "${#cpus[@]}" ]; then  # more nodes than cores: they share round-robin
    echo "${cpus[$(( ($1 - 1) % ${#cpus[@]} ))]}"; return
  fi
  share=$(( ${#cpus[@]} / $2 ))
  local mine=()
  for ((i = ($1 - 1) * share; i < $1 * share; i++)); do mine+=("${cpus[i]}"); done
  local IFS=,; echo "${mine[*]}"
}

# NODE_CMD=(...): run a command as a process of node K (netns, hostname, cores).
node_cmd() {  # node_cmd K N
  local name; name="$(node_name "$1")"
  # Not `ip netns exec`: it remounts /sys, which hides the cgroup mounts that
  # slurmd needs. nsenter joins the network namespace only; a private mount
  # namespace lays the node's hosts and resolv.conf over /etc (as ip netns exec
  # would). nsenter and unshare without --fork, sh's exec and taskset all exec
  # in place, so the pid of the whole line is the command's pid.
  # shellcheck disable=SC2016  # $1.. are the inner shell's
  NODE_CMD=(nsenter "--net=/run/netns/$name" unshare --mount --uts -- sh -c \
    'mount --bind "/etc/netns/$1/hosts" /etc/hosts && mount --bind "/etc/netns/$1/resolv.conf" /etc/resolv.conf && hostname "$1" && cpus="$2" && shift 2 && exec taskset -c "$cpus" "$@"' \
    node "$name" "$(node_cpus "$1" "$2")")
}

subnet_free() {  # refuse when an address or route of this host overlaps SUBNET
  local first last cidr a b line
  read -r first last <<<"$(cidr_range "$SUBNET")"
  while read -r line; do
    [ -n "$line" ] || continue
    case "$line" in *" dev $BRIDGE "*|*" dev $BRIDGE") continue ;; esac  # ours from an earlier start
    cidr="${line%% *}"
    [ "$cidr" = default ] && continue
    [[ "$cidr" =~ ^[0-9.]+(/[0-9]+)?$ ]] || continue
    read -r a b <<<"$(cidr_range "$cidr")"
    if [ "$a" -le "$last" ] && [ "$first" -le "$b" ]; then
      die "subnet $SUBNET overlaps this host's route or address \"$line\"; choose another with GENBENCH_SLURM_SUBNET"
    fi
  done < <(ip -4 route show table main; ip -4 -o addr show | awk '{print $4 " dev " $2 " "}')
}

hosts_block() {  # the lines naming every node
  local k
  for k in $(seq "$RUN_NODES"); do echo "${ADDR[k]} $(node_name "$k")"; done
}

hosts_remove() {  # drop our marked block from /etc/hosts (in place: it may be a bind mount)
  grep -qxF "$HOSTS_BEGIN" /etc/hosts 2>/dev/null || return 0
  local tmp; tmp="$(mktemp)"
  awk -v b="$HOSTS_BEGIN" -v e="$HOSTS_END" '$0 == b {skip = 1} !skip {print} $0 == e {skip = 0}' /etc/hosts >"$tmp"
  cat "$tmp" >/etc/hosts
  rm -f "$tmp"
}

net_up() {  # bridge, namespaces, veth pairs, addresses, names for RUN_NODES nodes
  if ! command -v ip >/dev/null || ! command -v nsenter >/dev/null; then die "needs ip (iproute2), nsenter and unshare (util-linux)"; fi
  local owner="$OWNER_DIR/$BRIDGE" k name veth
  if [ -s "$owner" ] && [ "$(cat "$owner")" != "$DIR" ]; then
    die "bridge $BRIDGE belongs to the cluster in $(cat "$owner"); stop that one first (GENBENCH_SLURM_DIR=$(cat "$owner") $0 stop) or set GENBENCH_SLURM_BRIDGE, _NODE_PREFIX and _SUBNET"
  fi
  if [ ! -s "$owner" ]; then
    ip link show "$BRIDGE" >/dev/null 2>&1 && die "a link named $BRIDGE exists and is not ours; set GENBENCH_SLURM_BRIDGE"
    for k in $(seq "$RUN_NODES"); do
      ip netns list | grep -qw "^$(node_name "$k")" && die "network namespace $(node_name "$k") exists and is not ours; set GENBENCH_SLURM_NODE_PREFIX"
    done
    subnet_free
  fi
  # Recorded before anything is made, so that stop cleans up a half-made network.
  mkdir -p "$OWNER_DIR"
  echo "$DIR" >"$owner"
  [ -d /etc/netns ] || { mkdir /etc/netns; touch "$DIR/run/made-etc-netns"; }
  echo "$RUN_NODES" >"$DIR/run/net.nodes"
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
  fi
  ip addr replace "$CTL_ADDR/$NET_LEN" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  for k in $(seq "$RUN_NODES"); do
    name="$(node_name "$k")"; veth="$(veth_name "$k")"
    ip netns list | grep -qw "^$name" || ip netns add "$name"
    if ! ip link show "$veth" >/dev/null 2>&1; then
      ip -n "$name" link del eth0 2>/dev/null || true
      ip link add "$veth" type veth peer name eth0 netns "$name"
    fi
    ip link set "$veth" master "$BRIDGE" up
    ip -n "$name" addr replace "${ADDR[k]}/$NET_LEN" dev eth0
    ip -n "$name" link set eth0 up
    ip -n "$name" link set lo up
    mkdir -p "/etc/netns/$name"
    { echo "# Written by genbench slurm/local-cluster.sh for $name; removed by stop."
      echo "127.0.0.1 localhost"
      echo "$CTL_ADDR $HOST"
      hosts_block; } >"/etc/netns/$name/hosts"
    # No DNS server: unknown names fail at once instead of being sent anywhere.
    echo "# genbench local-cluster: no DNS in emulated nodes" >"/etc/netns/$name/resolv.conf"
  done
  hosts_remove
  { echo "$HOSTS_BEGIN"; hosts_block; echo "$HOSTS_END"; } >>/etc/hosts
}

net_down() {  # remove what net_up made (from $DIR/run/net.nodes, the count it made)
  local owner="$OWNER_DIR/$BRIDGE" made k name
  [ -s "$owner" ] && [ "$(cat "$owner")" = "$DIR" ] || return 0
  made="$(cat "$DIR/run/net.nodes" 2>/dev/null || echo 0)"
  [[ "$made" =~ ^[0-9]+$ ]] || made=0
  for k in $(seq "$made"); do
    name="$(node_name "$k")"
    kill_netns_procs "$name"
    ip link del "$(veth_name "$k")" 2>/dev/null || true
    ip netns del "$name" 2>/dev/null || true
    rm -f "/etc/netns/$name/hosts" "/etc/netns/$name/resolv.conf"
    rmdir "/etc/netns/$name" 2>/dev/null || true
  done
  if [ -e "$DIR/run/made-etc-netns" ]; then rmdir /etc/netns 2>/dev/null || true; fi
  rm -f "$DIR/run/made-etc-netns"
  ip link del "$BRIDGE" 2>/dev/null || true
  hosts_remove
  rm -f "$owner" "$DIR/run/net.nodes"
  rmdir "$OWNER_DIR" 2>/dev/null || true
}

netns_pids() { ip netns pids "$1" 2>/dev/null || true; }

kill_netns_procs() {  # kill_netns_procs NAME: TERM, then KILL, every process in netns NAME
  local -a pids
  mapfile -t pids < <(netns_pids "$1")
  [ ${#pids[@]} -gt 0 ] || return 0
  kill_pids 50 "${pids[@]}"
  # Processes that entered the namespace meanwhile (e.g. a step being launched).
  mapfile -t pids < <(netns_pids "$1")
  [ ${#pids[@]} -eq 0 ] || kill_pids 10 "${pids[@]}"
}

kill_pids() {  # kill_pids TENTHS PID...: TERM, wait up to TENTHS/10 s, KILL what is left
  local tenths="$1" i; shift
  kill -TERM "$@" 2>/dev/null || true
  for ((i = 0; i < tenths; i++)); do
    any_alive "$@" || return 0
    sleep 0.1
  done
  kill -KILL "$@" 2>/dev/null || true
  for i in $(seq 50); do any_alive "$@" || return 0; sleep 0.1; done
}

# ---------------------------------------------------------------- slurm

multi() { [ "$RUN_NODES" -gt 1 ]; }

node_list() {  # the Slurm node names, one a line
  if multi; then local k; for k in $(seq "$RUN_NODES"); do node_name "$k"; done; else echo "$NODE"; fi
}

slurmd_pidfiles() {
  if multi; then
    local n; for n in $(node_list); do echo "$DIR/run/slurmd-$n.pid"; done
  else
    echo "$DIR/run/slurmd.pid"
  fi
}

node_states() { sinfo -h -N -o '%N %t' 2>/dev/null || true; }

is_up() {
  local f
  pid_alive "$DIR/run/munged.pid" && pid_alive "$DIR/run/slurmctld.pid" || return 1
  for f in $(slurmd_pidfiles); do pid_alive "$f" || return 1; done
}

show_logs() {
  local f
  for f in "$DIR/log/munged.log" "$DIR/log/slurmctld.log" "$DIR"/log/slurmd*.log; do
    [ -f "$f" ] || continue
    echo "--- last lines of $f" >&2
    tail -n 15 "$f" >&2
  done
}

write_config() {
  local node_line nodes_lines="" mem k cpus ncpu
  # `slurmd -C` prints this machine's real CPUs, sockets, cores and memory.
  node_line="$(slurmd -C | head -n1)" || die "slurmd -C failed: cannot describe this node"
  [[ "$node_line" == NodeName=* ]] || die "unexpected output of slurmd -C: $node_line"
  node_line="${node_line/NodeName=$NODE /NodeName=$NODE NodeAddr=127.0.0.1 }"
  # 2% below the measured memory: a node that later reports a few MB less than
  # configured would be drained ("Low RealMemory").
  if [[ "$node_line" =~ RealMemory=([0-9]+) ]]; then
    mem=$((BASH_REMATCH[1] * 98 / 100))
    node_line="${node_line/RealMemory=${BASH_REMATCH[1]}/RealMemory=$mem}"
  fi
  mkdir -p "$DIR"/{munge,state,spool,log,run}
  chmod 0755 "$DIR"
  chmod 0700 "$DIR/munge"
  local ctld_host="$NODE(127.0.0.1)" pidfile="$DIR/run/slurmd.pid" spool="$DIR/spool"
  local logfile="$DIR/log/slurmd.log" extra=""
  if multi; then
    ctld_host="$HOST($CTL_ADDR)"
    pidfile="$DIR/run/slurmd-%n.pid"; spool="$DIR/spool/%n"; logfile="$DIR/log/slurmd-%n.log"
    for k in $(seq "$RUN_NODES"); do
      cpus="$(node_cpus "$k" "$RUN_NODES")"
      ncpu="$(tr ',' '\n' <<<"$cpus" | wc -l)"
      mkdir -p "$DIR/spool/$(node_name "$k")"
      # The node's share: its pinned cores (one socket, one thread per core) and memory.
      nodes_lines+="NodeName=$(node_name "$k") NodeHostname=$(node_name "$k") NodeAddr=${ADDR[k]} CPUs=$ncpu Boards=1 SocketsPerBoard=1 CoresPerSocket=$ncpu ThreadsPerCore=1 RealMemory=$((mem / RUN_NODES)) State=UNKNOWN"$'\n'
    done
    nodes_lines+="PartitionName=$PARTITION Nodes=${PREFIX}[1-$RUN_NODES] Default=YES MaxTime=INFINITE State=UP"
  else
    nodes_lines="$node_line State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP"
  fi
  if [ -n "$MAX_ARRAY" ]; then
    extra="MaxArraySize=$MAX_ARRAY"
    # Slurm wants MaxJobCount (default 10000) well above MaxArraySize.
    [ "$MAX_ARRAY" -lt 10000 ] || extra+=$'\n'"MaxJobCount=$((MAX_ARRAY + 10000))"
  fi
  cat >"$CONF.tmp" <<EOF
# Written by genbench slurm/local-cluster.sh; regenerated at every start.
ClusterName=genbench
SlurmctldHost=$ctld_host
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$pidfile
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$logfile
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
JobRequeue=1
InactiveLimit=0
KillWait=5
MinJobAge=300
SlurmctldTimeout=60
SlurmdTimeout=60
${extra:+$extra
}$nodes_lines
EOF
  mv "$CONF.tmp" "$CONF"
  # Client commands (sbatch, srun inside jobs, submitit) read the system path.
  # A multi-node cluster in a dir of its own (the tests' one, beside a 1-node
  # cluster) leaves it alone: its link would dangle after stop.
  if multi && [ "$DIR" != /var/lib/genbench-slurm ]; then
    say "use: export SLURM_CONF=$CONF"
  elif [ ! -e "$SYSTEM_CONF" ] && [ ! -L "$SYSTEM_CONF" ]; then
    mkdir -p "$(dirname "$SYSTEM_CONF")"
    ln -s "$CONF" "$SYSTEM_CONF"
  elif [ -L "$SYSTEM_CONF" ] && [ "$(readlink "$SYSTEM_CONF")" != "$CONF" ]; then
    say "note: $SYSTEM_CONF points elsewhere; use: export SLURM_CONF=$CONF"
  elif [ ! -L "$SYSTEM_CONF" ]; then
    say "note: $SYSTEM_CONF is not genbench's; use: export SLURM_CONF=$CONF"
  fi
}

start_munge() {
  if pid_alive "$DIR/run/munged.pid"; then return 0; fi
  if [ ! -s "$DIR/munge/munge.key" ]; then
    if command -v mungekey >/dev/null; then
      mungekey --create --keyfile="$DIR/munge/munge.key"
    else
      dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
    fi
    chmod 0400 "$DIR/munge/munge.key"
  fi
  rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
  # --force: munged refuses to run as root otherwise.
  munged --force --key-file="$DIR/munge/munge.key" --socket="$MUNGE_SOCKET" \
    --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" \
    --seed-file="$DIR/munge/munged.seed" \
    || { show_logs; die "munged did not start"; }
  local i
  for i in $(seq 50); do
    if munge -n -S "$MUNGE_SOCKET" 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.2
  done
  show_logs
  die "munged started but does not answer on $MUNGE_SOCKET"
}

start_slurmds() {
  if ! multi; then
    slurmd -f "$CONF" -N "$NODE" || { show_logs; die "slurmd did not start"; }
    return 0
  fi
  local k name
  for k in $(seq "$RUN_NODES"); do
    name="$(node_name "$k")"
    if [ "${1:-}" = missing ] && pid_alive "$DIR/run/slurmd-$name.pid"; then continue; fi
    node_cmd "$k" "$RUN_NODES"
    # slurmd daemonizes; its daemon keeps the namespaces, hostname and cores.
    "${NODE_CMD[@]}" slurmd -f "$CONF" -N "$name" \
      || { show_logs; die "slurmd of $name did not start"; }
  done
}

wait_for_nodes() {
  local deadline=$((SECONDS + START_TIMEOUT)) states="" line n s ok
  while [ $SECONDS -lt $deadline ]; do
    states="$(node_states)"
    ok=1
    for n in $(node_list); do
      line="$(grep -m1 "^$n " <<<"$states" || true)"
      s="${line#* }"
      case "$line" in
        "") ok=0 ;;
        *) case "$s" in
             idle|mix|alloc|comp) ;;  # up (jobs recovered from the state save may run)
             down*|drain*|fail*)
               ok=0
               # A node left down by an earlier run comes back once slurmd has registered.
               scontrol update nodename="$n" state=resume >/dev/null 2>&1 || true ;;
             *) ok=0 ;;
           esac ;;
      esac
    done
    [ $ok -eq 0 ] || return 0
    sleep 0.5
  done
  show_logs
  die "nodes not up after ${START_TIMEOUT}s (states: $(tr '\n' ' ' <<<"${states:-no answer from slurmctld}"))"
}

check_step() {
  # The nodes may look idle from the saved state before slurmd has registered:
  # a job step on every node proves munge, slurmctld, slurmd and slurmstepd work.
  timeout 120 srun --partition="$PARTITION" --nodes="$RUN_NODES" --ntasks="$RUN_NODES" --time=1 \
    --job-name=local-cluster-check true >/dev/null 2>"$DIR/log/check.err" \
    || { cat "$DIR/log/check.err" >&2; show_logs; die "a test job step (srun true) failed"; }
}

parse_start_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --nodes) [ $# -ge 2 ] || die "--nodes needs a number"; NODES="$2"; shift 2 ;;
      --nodes=*) NODES="${1#*=}"; shift ;;
      --max-array-size) [ $# -ge 2 ] || die "--max-array-size needs a number"; MAX_ARRAY="$2"; shift 2 ;;
      --max-array-size=*) MAX_ARRAY="${1#*=}"; shift ;;
      *) die "start: unknown option $1 (use --nodes N, --max-array-size M)" ;;
    esac
  done
  if ! [[ "$NODES" =~ ^[0-9]{1,2}$ ]] || [ "$((10#$NODES))" -lt 1 ]; then die "--nodes: give a number from 1 to 99"; fi
  NODES=$((10#$NODES))
  if [ -n "$MAX_ARRAY" ]; then
    if ! [[ "$MAX_ARRAY" =~ ^[0-9]{1,7}$ ]] || [ "$((10#$MAX_ARRAY))" -gt 4000001 ]; then
      die "--max-array-size: give a number from 0 to 4000001"
    fi
    MAX_ARRAY=$((10#$MAX_ARRAY))
  fi
}

cmd_start() {
  parse_start_args "$@"
  [ "$(id -u)" -eq 0 ] || die "must run as root (it starts munged, slurmctld and slurmd as root)"
  "$REPO/tools/system-deps.sh" "${PACKAGES[@]}" \
    || die "could not install the Debian packages ${PACKAGES[*]}"
  load_settings
  if [ -s "$DIR/settings" ] && [ "$(cat "$DIR/settings")" != "$(settings_line)" ]; then
    # Other settings (node count, array size, ports): replace the cluster, and
    # remove the namespaces of a different node count.
    if is_up; then say "replacing the running $RUN_NODES-node cluster in $DIR (other settings)"; fi
    stop_all quiet
  fi
  RUN_NODES="$NODES"
  if multi; then net_setup_vars; fi
  local started=$SECONDS
  if pid_alive "$DIR/run/munged.pid" && pid_alive "$DIR/run/slurmctld.pid" \
      && [ -n "$(node_states)" ] && { ! multi || [ -s "$OWNER_DIR/$BRIDGE" ]; }; then
    if is_up; then
      wait_for_nodes
      say "already running ($(summary))"
      return 0
    fi
    if multi; then  # e.g. after kill-node: start only the missing slurmds
      net_up
      start_slurmds missing
      wait_for_nodes
      check_step
      say "restarted the missing slurmd(s) in $((SECONDS - started)) s: $(summary)"
      return 0
    fi
  fi
  # A half-started cluster (e.g. slurmctld crashed) is restarted from scratch.
  stop_daemons
  mkdir -p "$DIR/run"
  if multi; then net_up; fi
  settings_line >"$DIR/settings"
  write_config
  start_munge
  slurmctld -f "$CONF" || { show_logs; die "slurmctld did not start"; }
  start_slurmds
  wait_for_nodes
  check_step
  say "started in $((SECONDS - started)) s: $(summary)"
}

summary() {
  if multi; then
    local k out=""
    for k in $(seq "$RUN_NODES"); do
      out+="$(node_name "$k") ${ADDR[k]} ($(sinfo -h -n "$(node_name "$k")" -o '%c CPUs, %m MB' | head -n1)), "
    done
    echo "${out}controller $HOST $CTL_ADDR:$CTLD_PORT, partition $PARTITION, SLURM_CONF=$CONF"
  else
    echo "node $NODE ($(sinfo -h -n "$NODE" -o '%c CPUs, %m MB')), partition $PARTITION, SLURM_CONF=$CONF"
  fi
}

stop_pidfile() {  # stop_pidfile FILE: TERM the daemon in FILE, then KILL
  local file="$1" pid i
  pid_alive "$file" || { rm -f "$file"; return 0; }
  pid="$(cat "$file")"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do
    alive "$pid" || { rm -f "$file"; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$file"
}

stop_daemons() {  # slurmd(s), slurmctld, munged of $DIR; sets STOPPED_ANY
  local f
  STOPPED_ANY=0
  for f in "$DIR"/run/slurmd.pid "$DIR"/run/slurmd-*.pid "$DIR/run/slurmctld.pid" "$DIR/run/munged.pid"; do
    [ -e "$f" ] || continue
    if pid_alive "$f"; then STOPPED_ANY=1; fi
    stop_pidfile "$f"
  done
}

stop_all() {  # stop_all [quiet]: Ray, daemons, then the network of a multi-node cluster
  local quiet="${1:-}" had_net=0
  load_settings
  [ -s "$OWNER_DIR/$BRIDGE" ] && [ "$(cat "$OWNER_DIR/$BRIDGE")" = "$DIR" ] && had_net=1
  ray_stop quiet
  stop_daemons
  local any=$STOPPED_ANY
  net_down
  if [ -z "$quiet" ]; then
    if [ "$any" -eq 1 ] || [ $had_net -eq 1 ]; then say "stopped"; else say "not running"; fi
  fi
}

cmd_status() {
  local f up=0 k name
  load_settings
  if multi; then net_setup_vars; fi
  for f in "$DIR/run/munged.pid" "$DIR/run/slurmctld.pid" $(slurmd_pidfiles); do
    name="$(basename "$f" .pid)"
    if pid_alive "$f"; then
      echo "$name: running (pid $(cat "$f"))"
    else
      echo "$name: stopped"; up=3
    fi
  done
  if multi; then
    for k in $(seq "$RUN_NODES"); do
      name="$(node_name "$k")"
      if ip netns list | grep -qw "^$name"; then
        echo "node $name: ${ADDR[k]}, link $(ip -br link show "$(veth_name "$k")" 2>/dev/null | awk '{print $2}'), cpus $(node_cpus "$k" "$RUN_NODES"), $(netns_pids "$name" | wc -l) processes"
      else
        echo "node $name: no namespace"; up=3
      fi
    done
    for k in $(seq "$RUN_NODES"); do
      if pid_alive "$DIR/run/ray-$(node_name "$k").pid"; then
        echo "ray on $(node_name "$k"): running (pid $(cat "$DIR/run/ray-$(node_name "$k").pid"))"
      fi
    done
  fi
  if [ $up -eq 0 ]; then
    echo "SLURM_CONF=$CONF"
    if multi; then sinfo -N -o '%N %t %c %m %P' || up=3; else sinfo || up=3; fi
  fi
  return $up
}

# ---------------------------------------------------------------- node control

need_multi() {  # need_multi K: K names a node of the running multi-node cluster
  load_settings
  multi || die "no multi-node cluster in $DIR (start it with --nodes N)"
  if ! [[ "${1:-}" =~ ^[0-9]{1,2}$ ]] || [ "$1" -lt 1 ] || [ "$1" -gt "$RUN_NODES" ]; then
    die "give a node number from 1 to $RUN_NODES"
  fi
  ip netns list | grep -qw "^$(node_name "$1")" || die "node $(node_name "$1") has no namespace; run start"
  net_setup_vars
}

cmd_node_link() {  # cmd_node_link up|down K
  need_multi "${2:-}"
  ip link set "$(veth_name "$2")" "$1"
  say "$(node_name "$2") link $1"
}

cmd_kill_node() {
  need_multi "${1:-}"
  local name; name="$(node_name "$1")"
  kill_netns_procs "$name"
  rm -f "$DIR/run/slurmd-$name.pid"
  say "killed every process of $name (start again to bring its slurmd back)"
}

cmd_exec() {
  need_multi "${1:-}"
  local k="$1"; shift
  [ $# -gt 0 ] || die "exec K CMD [ARG...]: give a command"
  node_cmd "$k" "$RUN_NODES"
  exec "${NODE_CMD[@]}" "$@"
}

# ---------------------------------------------------------------- ray

ray_bin() {
  if [ -n "${GENBENCH_RAY:-}" ]; then echo "$GENBENCH_RAY"
  elif [ -x "$REPO/.venv/bin/ray" ]; then echo "$REPO/.venv/bin/ray"
  else command -v ray || die "ray not found: run make install or set GENBENCH_RAY"
  fi
}

ray_env_file() {
  cat <<EOF
export RAY_AUTH_MODE=token
export RAY_AUTH_TOKEN_PATH=$DIR/ray/auth_token
export RAY_ADDRESS=${ADDR[1]}:$RAY_PORT
EOF
}

ray_alive_nodes() {  # how many Ray nodes the GCS counts as alive (asked from node 1)
  local py
  py="$(dirname "$(ray_bin)")/python"
  [ -x "$py" ] || py=python3
  node_cmd 1 "$RUN_NODES"
  RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$DIR/ray/auth_token" timeout 60 "${NODE_CMD[@]}" "$py" -c '
import sys
from ray._raylet import GcsClient
nodes = GcsClient(address=sys.argv[1]).get_all_node_info(timeout=10)
print(sum(1 for n in nodes.values() if n.state == 0))
' "${ADDR[1]}:$RAY_PORT" 2>/dev/null || echo 0
}

cmd_ray_start() {
  load_settings
  multi || die "ray-start needs a multi-node cluster in $DIR (start --nodes N)"
  net_setup_vars
  [ -s "$OWNER_DIR/$BRIDGE" ] || die "the nodes' network is not up; run start --nodes $RUN_NODES"
  local ray k name cpus head="${ADDR[1]}:$RAY_PORT" all=1
  ray="$(ray_bin)"
  for k in $(seq "$RUN_NODES"); do pid_alive "$DIR/run/ray-$(node_name "$k").pid" || all=0; done
  if [ $all -eq 1 ] && [ "$(ray_alive_nodes)" = "$RUN_NODES" ]; then
    say "ray already running: $RUN_NODES nodes, head $head"
    ray_env_file
    return 0
  fi
  local missing=0
  if pid_alive "$DIR/run/ray-$(node_name 1).pid" && [ "$(ray_alive_nodes)" -ge 1 ]; then
    missing=1  # the head lives (e.g. after kill-node): start only the nodes that are gone
  else
    ray_stop quiet
  fi
  mkdir -p "$DIR/ray" "$DIR/log"
  if [ ! -s "$DIR/ray/auth_token" ]; then
    # One token for the whole cluster, like `ray get-auth-token --generate` (256 bits, hex).
    (umask 077; od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$DIR/ray/auth_token")
  fi
  ray_env_file >"$DIR/ray/env"
  export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$DIR/ray/auth_token" RAY_USAGE_STATS_ENABLED=0
  for k in $(seq "$RUN_NODES"); do
    name="$(node_name "$k")"
    if [ $missing -eq 1 ]; then
      pid_alive "$DIR/run/ray-$name.pid" && continue
      ray_kill "$name" || true
      ray_forget "$name"
    fi
    cpus="$(node_cpus "$k" "$RUN_NODES")"
    local -a role=(--address "$head")
    [ "$k" -eq 1 ] && role=(--head --port "$RAY_PORT" --include-dashboard false)
    rm -rf "${RAY_TMP:?}/$name"
    mkdir -p "$RAY_TMP/$name"
    node_cmd "$k" "$RUN_NODES"
    # --block keeps `ray start` in the foreground as the parent of the node's Ray
    # processes, so ray-stop can end exactly that process tree.
    setsid "${NODE_CMD[@]}" "$ray" start "${role[@]}" --block --node-ip-address "${ADDR[k]}" \
      --num-cpus "$(tr ',' '\n' <<<"$cpus" | wc -l)" --num-gpus 0 --temp-dir "$RAY_TMP/$name" \
      --disable-usage-stats </dev/null >"$DIR/log/ray-$name.log" 2>&1 &
    echo $! >"$DIR/run/ray-$name.pid"
    if [ "$k" -eq 1 ]; then  # workers need the head's GCS up
      wait_ray 1 || { tail -n 30 "$DIR/log/ray-$name.log" >&2; die "the Ray head on $name did not start"; }
    fi
  done
  wait_ray "$RUN_NODES" || { tail -n 20 "$DIR"/log/ray-*.log >&2; die "Ray nodes did not all join in ${RAY_START_TIMEOUT}s"; }
  say "ray $([ $missing -eq 1 ] && echo "restarted the missing nodes" || echo started): head $head (in $(node_name 1)), $RUN_NODES nodes; a driver needs:"
  ray_env_file
}

wait_ray() {  # wait_ray N: until the GCS counts N alive nodes
  local deadline=$((SECONDS + RAY_START_TIMEOUT)) k name ok
  while [ $SECONDS -lt $deadline ]; do
    ok=1
    for k in $(seq "$RUN_NODES"); do
      name="$(node_name "$k")"
      [ -e "$DIR/run/ray-$name.pid" ] || continue
      pid_alive "$DIR/run/ray-$name.pid" || return 1
      # The GCS may still count a killed node as alive; its successor has joined
      # when its `ray start` says so.
      grep -q "Ray runtime started" "$DIR/log/ray-$name.log" 2>/dev/null || ok=0
    done
    [ $ok -eq 1 ] && [ "$(ray_alive_nodes)" -ge "$1" ] && return 0
    sleep 1
  done
  return 1
}

any_alive() { local p; for p in "$@"; do alive "$p" && return 0; done; return 1; }

tree_pids() {  # tree_pids PID: PID and all its descendants
  local all queue=("$1") p
  all="$(ps -e -o pid=,ppid=)"
  while [ ${#queue[@]} -gt 0 ]; do
    p="${queue[0]}"; queue=("${queue[@]:1}")
    echo "$p"
    # shellcheck disable=SC2207
    queue+=($(awk -v p="$p" '$2 == p {print $1}' <<<"$all"))
  done
}

ray_pids() {  # ray_pids NAME: sets RAY_ROOT (pid of `ray start`, or "") and RAY_PIDS
  local f="$DIR/run/ray-$1.pid" p
  RAY_ROOT=""; RAY_PIDS=()
  if pid_alive "$f"; then RAY_ROOT="$(cat "$f")"; mapfile -t RAY_PIDS < <(tree_pids "$RAY_ROOT"); fi
  # Processes that left the tree (double forks) still name the node's temp dir.
  for p in $(netns_pids "$1"); do
    if grep -qF "$RAY_TMP/$1" "/proc/$p/cmdline" 2>/dev/null; then RAY_PIDS+=("$p"); fi
  done
}

ray_kill() {  # ray_kill NAME...: end the Ray processes of these nodes; 1 if there were none
  local name i roots=() pids=()
  for name in "$@"; do
    ray_pids "$name"
    [ -z "$RAY_ROOT" ] || roots+=("$RAY_ROOT")
    pids+=("${RAY_PIDS[@]}")
  done
  [ ${#pids[@]} -gt 0 ] || return 1
  # `ray start --block` stops its own processes on TERM (in about 3 s); TERM
  # to all at once makes it wait much longer. After 5 s the rest get TERM,
  # after 15 s KILL.
  [ ${#roots[@]} -eq 0 ] || kill -TERM "${roots[@]}" 2>/dev/null || true
  for i in $(seq 50); do
    any_alive "${pids[@]}" || return 0
    sleep 0.1
  done
  kill_pids 100 "${pids[@]}"
}

ray_forget() {  # ray_forget NAME: drop the pid file and temp dir of node NAME's Ray
  rm -f "$DIR/run/ray-$1.pid"
  rm -rf "${RAY_TMP:?}/$1"
}

ray_stop() {  # ray_stop [quiet]: the process trees of ray-start, no other Ray
  local quiet="${1:-}" f name any=0 names=()
  for f in "$DIR"/run/ray-*.pid; do
    [ -e "$f" ] || continue
    name="$(basename "$f" .pid)"; names+=("${name#ray-}")
  done
  if [ ${#names[@]} -gt 0 ]; then
    ray_kill "${names[@]}" && any=1
    for name in "${names[@]}"; do ray_forget "$name"; done
  fi
  rmdir "$RAY_TMP" 2>/dev/null || true
  if [ -z "$quiet" ]; then
    if [ $any -eq 1 ]; then say "ray stopped"; else say "ray not running"; fi
  fi
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  stop) stop_all ;;
  status) cmd_status ;;
  exec) shift; cmd_exec "$@" ;;
  node-down) cmd_node_link down "${2:-}" ;;
  node-up) cmd_node_link up "${2:-}" ;;
  kill-node) cmd_kill_node "${2:-}" ;;
  ray-start) cmd_ray_start ;;
  ray-stop) ray_stop ;;
  *) echo "usage: $0 start [--nodes N] [--max-array-size M] | stop | status | exec K CMD... | node-down K | node-up K | kill-node K | ray-start | ray-stop" >&2; exit 2 ;;
esac
