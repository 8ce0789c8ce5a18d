#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for genbench's tests and for trying
# `genbench submit` without a real cluster.
#
#   slurm/local-cluster.sh start    install the Debian packages if missing, write the
#                                   config, start munged + slurmctld + slurmd, and
#                                   wait until the node is idle (~20 s)
#   slurm/local-cluster.sh stop     stop the three daemons (queued jobs are kept in
#                                   the state directory for the next start)
#   slurm/local-cluster.sh status   print the daemons and `sinfo`; exit 0 if up, 3 if not
#
# Both `start` and `stop` are idempotent. Runs as root: Debian's slurmctld,
# slurmd, slurm-client and munge, with ProctrackType=proctrack/linuxproc,
# TaskPlugin=task/none and no accounting (sacct does not work), one node with
# this machine's CPUs and memory (from `slurmd -C`) in one partition.
#
# Everything lives in $GENBENCH_SLURM_DIR (default /var/lib/genbench-slurm):
# slurm.conf, its own munge key and socket, state, spool, logs and pid files.
# Slurm's client commands read /etc/slurm/slurm.conf unless SLURM_CONF is set;
# that path is made a symlink to our slurm.conf when it does not exist (or
# already is our symlink). Otherwise `export SLURM_CONF=$DIR/slurm.conf`.
#
# Environment: GENBENCH_SLURM_DIR, GENBENCH_SLURM_PARTITION (default debug),
# GENBENCH_SLURMCTLD_PORT (6817), GENBENCH_SLURMD_PORT (6818),
# GENBENCH_SLURM_START_TIMEOUT (seconds to wait for an idle node, default 90).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
DIR="${GENBENCH_SLURM_DIR:-/var/lib/genbench-slurm}"
PARTITION="${GENBENCH_SLURM_PARTITION:-debug}"
CTLD_PORT="${GENBENCH_SLURMCTLD_PORT:-6817}"
SLURMD_PORT="${GENBENCH_SLURMD_PORT:-6818}"
START_TIMEOUT="${GENBENCH_SLURM_START_TIMEOUT:-90}"
NODE="$(hostname -s)"
CONF="$DIR/slurm.conf"
MUNGE_SOCKET="$DIR/munge/munge.socket"
SYSTEM_CONF=/etc/slurm/slurm.conf
PACKAGES=(slurmctld slurmd slurm-client munge)

export SLURM_CONF="$CONF"

say() { echo "local-cluster: $*"; }
die() { echo "local-cluster: error: $*" >&2; exit 1; }

pid_alive() {  # pid_alive PIDFILE: the daemon named in PIDFILE is running
  local pid
  [ -s "$1" ] || return 1
  pid="$(cat "$1" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

node_state() { sinfo -h -n "$NODE" -o %t 2>/dev/null | head -n1 || true; }

is_up() {
  pid_alive "$DIR/run/munged.pid" && pid_alive "$DIR/run/slurmctld.pid" \
    && pid_alive "$DIR/run/slurmd.pid"
}

show_logs() {
  for f in "$DIR/log/munged.log" "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log"; do
    [ -f "$f" ] || continue
    echo "--- last lines of $f" >&2
    tail -n 15 "$f" >&2
  done
}

write_config() {
  local node_line
  # `slurmd -C` prints this machine's real CPUs, sockets, cores and memory.
  node_line="$(slurmd -C | head -n1)" || die "slurmd -C failed: cannot describe this node"
  [[ "$node_line" == NodeName=* ]] || die "unexpected output of slurmd -C: $node_line"
  node_line="${node_line/NodeName=$NODE /NodeName=$NODE NodeAddr=127.0.0.1 }"
  # 2% below the measured memory: a node that later reports a few MB less than
  # configured would be drained ("Low RealMemory").
  if [[ "$node_line" =~ RealMemory=([0-9]+) ]]; then
    node_line="${node_line/RealMemory=${BASH_REMATCH[1]}/RealMemory=$((BASH_REMATCH[1] * 98 / 100))}"
  fi
  mkdir -p "$DIR"/{munge,state,spool,log,run}
  chmod 0755 "$DIR"
  chmod 0700 "$DIR/munge"
  cat >"$CONF.tmp" <<EOF
# Written by genbench slurm/local-cluster.sh; regenerated at every start.
ClusterName=genbench
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
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
$node_line State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$CONF.tmp" "$CONF"
  # Client commands (sbatch, srun inside jobs, submitit) read the system path.
  if [ ! -e "$SYSTEM_CONF" ] && [ ! -L "$SYSTEM_CONF" ]; then
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

wait_for_node() {
  local deadline=$((SECONDS + START_TIMEOUT)) state=""
  while [ $SECONDS -lt $deadline ]; do
    state="$(node_state)"
    case "$state" in
      idle|mix|alloc|comp) return 0 ;;  # up (jobs recovered from the state save may run)
      down*|drain*|fail*)
        # A node left down by an earlier run comes back once slurmd has registered.
        scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
  done
  show_logs
  die "node $NODE is not up after ${START_TIMEOUT}s (state: ${state:-no answer from slurmctld})"
}

cmd_start() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (it starts munged, slurmctld and slurmd as root)"
  "$REPO/tools/system-deps.sh" "${PACKAGES[@]}" \
    || die "could not install the Debian packages ${PACKAGES[*]}"
  if is_up && [ -n "$(node_state)" ]; then
    wait_for_node
    say "already running (node $NODE, partition $PARTITION, SLURM_CONF=$CONF)"
    return 0
  fi
  local started=$SECONDS
  # A half-started cluster (e.g. slurmd crashed) is restarted from scratch.
  stop_daemons quiet
  write_config
  start_munge
  slurmctld -f "$CONF" || { show_logs; die "slurmctld did not start"; }
  slurmd -f "$CONF" -N "$NODE" || { show_logs; die "slurmd did not start"; }
  wait_for_node
  # The node may look idle from the saved state before slurmd has registered:
  # a one-task job step proves munge, slurmctld, slurmd and slurmstepd all work.
  timeout 120 srun --partition="$PARTITION" --ntasks=1 --time=1 --job-name=local-cluster-check \
    true >/dev/null 2>"$DIR/log/check.err" \
    || { cat "$DIR/log/check.err" >&2; show_logs; die "a test job step (srun true) failed"; }
  say "started in $((SECONDS - started)) s: node $NODE ($(sinfo -h -n "$NODE" -o '%c CPUs, %m MB')), partition $PARTITION, SLURM_CONF=$CONF"
}

stop_pidfile() {  # stop_pidfile NAME: TERM the daemon in $DIR/run/NAME.pid, then KILL
  local file="$DIR/run/$1.pid" pid i
  pid_alive "$file" || { rm -f "$file"; return 0; }
  pid="$(cat "$file")"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$file"; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$file"
}

stop_daemons() {
  local quiet="${1:-}" any=0
  for name in slurmd slurmctld munged; do
    if pid_alive "$DIR/run/$name.pid"; then
      any=1
      stop_pidfile "$name"
    fi
  done
  if [ -z "$quiet" ]; then
    if [ $any -eq 1 ]; then say "stopped"; else say "not running"; fi
  fi
}

cmd_status() {
  local name up=0
  for name in munged slurmctld slurmd; do
    if pid_alive "$DIR/run/$name.pid"; then
      echo "$name: running (pid $(cat "$DIR/run/$name.pid"))"
    else
      echo "$name: stopped"; up=3
    fi
  done
  if [ $up -eq 0 ]; then
    echo "SLURM_CONF=$CONF"
    sinfo || up=3
  fi
  return $up
}

case "${1:-}" in
  start) cmd_start ;;
  stop) stop_daemons ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
