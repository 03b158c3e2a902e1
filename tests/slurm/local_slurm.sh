#!/usr/bin/env bash
# A real, single-host Slurm cluster in a directory of its own, for trying
# configs/slurm/ddlm.sbatch end to end (tests/slurm:slurm_test uses it).
#
#   tests/slurm/local_slurm.sh start DIR    start munged, slurmctld and slurmd (no jobs of
#                                           an earlier run come back); wait until the node
#                                           is idle (nothing to do if already up)
#   tests/slurm/local_slurm.sh env DIR      print `export SLURM_CONF=DIR/etc/slurm.conf`:
#                                           eval "$(tests/slurm/local_slurm.sh env DIR)"
#   tests/slurm/local_slurm.sh stop DIR     cancel its jobs, stop the daemons and anything
#                                           they left behind (nothing to do if down)
#
# Needs root (SlurmUser=root; jobs run as the submitting user) and Debian's packages
# slurmctld, slurmd, slurm-client and munge (apt-get install -y --no-install-recommends
# slurmctld slurmd slurm-client munge). Everything lives in DIR: its own munge key and
# munged (own pid, log and seed files), a generated slurm.conf with free ports of its
# own, one node (this machine, `hostname -s`, with what `slurmd -C` finds), one
# partition, no cgroups (proctrack/linuxproc, task/none), no accounting. Unix socket
# paths must be short (munged's socket, a socket per job step in slurmd's spool): when
# DIR's is too long they go to a /tmp/ddlm-slurm.XXXXXX, which `stop` removes. The
# system's munged and Slurm, if any, are left alone. Exit codes: 0 done, 1 failed (with
# the daemons' logs' tails), 2 usage, 3 cannot run here (not root, or a package
# missing; the message says which).
set -euo pipefail
# The daemons live in /usr/sbin, which a test's or a user's PATH may lack.
export PATH=${PATH:+$PATH:}/usr/sbin:/sbin:/usr/bin:/bin

usage() {
  sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

die() {
  echo "local_slurm: $*" >&2
  exit 1
}

cannot_run() {
  echo "local_slurm: cannot run here: $*" >&2
  exit 3
}

[ $# -eq 2 ] || usage
command=$1
case "$command" in start | stop | env) ;; *) usage ;; esac
mkdir -p "$2" 2>/dev/null || die "cannot create $2"
dir=$(cd "$2" && pwd -P)
conf=$dir/etc/slurm.conf
# Every daemon started here carries this in its environment; slurmstepd (which clears
# its environment) is known by the slurmd log file it keeps open. `stop` finds what is
# left by these (and by nothing else), and every process below them.
marker="DDLM_LOCAL_SLURM=$dir"

# ---- helpers

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

pid_from() { if [ -s "$1" ]; then tr -dc '0-9' <"$1"; fi; }

# Where the Unix sockets go: munged's, and slurmd's spool directory, where every job
# step gets one (<spool>/<node>_<job>.<step>). A socket's path has at most 107 bytes, so
# that is DIR/sockets only when DIR's path is short, else a short directory under /tmp
# (recorded in DIR/sockets_dir; `stop` removes it).
sockets_dir() {
  if [ -s "$dir/sockets_dir" ]; then
    cat "$dir/sockets_dir"
  elif [ ${#dir} -le 40 ]; then
    echo "$dir/sockets"
  else
    local d
    d=$(mktemp -d /tmp/ddlm-slurm.XXXXXX) || die "cannot make a socket directory under /tmp"
    echo "$d" >"$dir/sockets_dir"
    echo "$d"
  fi
}

# TCP ports something listens on (IPv4 and IPv6), in decimal.
ports_in_use() {
  local f
  for f in /proc/net/tcp /proc/net/tcp6; do
    [ -r "$f" ] || continue
    awk 'NR > 1 && $4 == "0A" { split($2, a, ":"); print a[2] }' "$f"
  done | while read -r hex; do echo $((16#$hex)); done | sort -un
}

# Two free ports, not next to each other's users: slurmctld's and slurmd's.
free_ports() {
  local used port found=()
  used=$(ports_in_use)
  for _ in $(seq 200); do
    port=$((20000 + RANDOM % 30000))
    if ! grep -qx "$port" <<<"$used" && [[ " ${found[*]-} " != *" $port "* ]]; then
      found+=("$port")
      [ ${#found[@]} -eq 2 ] && break
    fi
  done
  [ ${#found[@]} -eq 2 ] || die "found no free ports"
  echo "${found[@]}"
}

# The node's line: what slurmd -C measures (CPUs, sockets, cores, threads, memory).
node_line() {
  local line
  line=$(slurmd -C 2>/dev/null | grep '^NodeName=' || true)
  if [ -z "$line" ]; then
    line="NodeName=$(hostname -s) CPUs=$(nproc)"
  fi
  # A little memory is kept back so that the node is never "smaller than configured".
  echo "$line" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^RealMemory=/) {
                          split($i, kv, "="); $i = "RealMemory=" int(kv[2] * 0.9) } print }'
}

write_config() {
  local ctld_port slurmd_port sockets host
  read -r ctld_port slurmd_port < <(free_ports)
  sockets=$(sockets_dir)
  host=$(hostname -s)
  mkdir -p "$dir/etc"
  cat >"$conf.tmp" <<EOF
# Made by tests/slurm/local_slurm.sh: a one-node Slurm in $dir.
ClusterName=ddlmlocal
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
AuthInfo=socket=$sockets/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$sockets/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$dir/etc/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=30
MinJobAge=3600
$(node_line) NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  : >"$dir/etc/plugstack.conf"
  mv "$conf.tmp" "$conf"
}

log_tails() {
  local f
  for f in "$dir/log/munged.log" "$dir/log/slurmctld.log" "$dir/log/slurmd.log"; do
    [ -s "$f" ] || continue
    echo "--- $f (last 20 lines):" >&2
    tail -n 20 "$f" >&2
  done
}

start_failed() {
  echo "local_slurm: $*" >&2
  log_tails
  exit 1
}

# The pid in file $1 if it is alive and ours (not a stale file's pid reused), else "".
our_pid() {
  local pid
  pid=$(pid_from "$1")
  if pid_alive "$pid" && tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | grep -qxF "$marker"; then
    echo "$pid"
  fi
}
munged_running() { [ -n "$(our_pid "$dir/run/munged.pid")" ]; }
slurmctld_running() { [ -n "$(our_pid "$dir/run/slurmctld.pid")" ]; }
slurmd_running() { [ -n "$(our_pid "$dir/run/slurmd.pid")" ]; }

node_state() { SLURM_CONF=$conf sinfo -h -N -o '%t' 2>/dev/null | head -n 1 || true; }

# Waits up to $1 s for the node to be idle (or mixed/allocated: up and usable).
wait_until_up() {
  local deadline=$((SECONDS + $1)) state=""
  while [ $SECONDS -lt $deadline ]; do
    state=$(node_state)
    case "$state" in idle | mix | alloc | comp) return 0 ;; esac
    slurmctld_running || start_failed "slurmctld exited"
    slurmd_running || start_failed "slurmd exited"
    sleep 0.2
  done
  start_failed "the node is not idle after $1 s (state '${state:-none}')"
}

# ---- commands

start() {
  [ "$(id -u)" -eq 0 ] || cannot_run "needs root (SlurmUser=root), running as uid $(id -u)"
  local missing=() b
  for b in munged munge slurmctld slurmd sinfo sbatch srun scontrol scancel squeue; do
    command -v "$b" >/dev/null 2>&1 || missing+=("$b")
  done
  [ ${#missing[@]} -eq 0 ] || cannot_run "missing ${missing[*]} (apt-get install -y slurmctld slurmd slurm-client munge)"

  if munged_running && slurmctld_running && slurmd_running && [ -s "$conf" ]; then
    wait_until_up 30
    echo "local_slurm: already running in $dir"
    return 0
  fi
  # Half up (a crash, a killed test): start over from nothing running.
  stop_all quiet

  umask 077
  # A fresh cluster: no jobs or steps of an earlier one come back.
  local sockets
  sockets=$(sockets_dir)
  rm -rf "$dir/state" "$sockets/spool"
  mkdir -p "$dir/munge" "$dir/state" "$dir/log" "$dir/run" "$sockets/spool"
  chmod 0700 "$dir/munge"
  chmod 0755 "$dir" "$dir/state" "$dir/log" "$dir/run" "$sockets" "$sockets/spool"
  [ -s "$dir/munge/munge.key" ] || mungekey --create --keyfile="$dir/munge/munge.key" >/dev/null ||
    start_failed "mungekey could not make a key"
  chmod 0600 "$dir/munge/munge.key"
  write_config
  local socket=$sockets/munge.socket

  env "$marker" munged --force --socket="$socket" --key-file="$dir/munge/munge.key" \
    --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" \
    --seed-file="$dir/munge/munged.seed" >"$dir/log/munged.out" 2>&1 ||
    start_failed "munged did not start: $(cat "$dir/log/munged.out")"
  munge -n -S "$socket" | unmunge -S "$socket" >/dev/null 2>&1 ||
    start_failed "munge does not answer on $socket"

  umask 022
  env "$marker" SLURM_CONF="$conf" slurmctld -f "$conf" >"$dir/log/slurmctld.out" 2>&1 ||
    start_failed "slurmctld did not start: $(cat "$dir/log/slurmctld.out")"
  env "$marker" SLURM_CONF="$conf" slurmd -f "$conf" >"$dir/log/slurmd.out" 2>&1 ||
    start_failed "slurmd did not start: $(cat "$dir/log/slurmd.out")"
  wait_until_up 60
  echo "local_slurm: up in $dir (node $(hostname -s), $(SLURM_CONF=$conf sinfo -h -o '%c CPUs, partition %P'))"
  echo "local_slurm: eval \"\$($0 env $dir)\" to use it"
}

# Processes started by this cluster: its daemons, the slurmstepds of its jobs, and
# every process below them (jobs' processes), children first.
our_processes() {
  local p pid roots="" parents
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [ "$pid" = "$$" ] && continue
    if tr '\0' '\n' 2>/dev/null <"$p/environ" | grep -qxF "$marker" ||
      { [ "$(cat "$p/comm" 2>/dev/null)" = slurmstepd ] &&
        find "$p/fd" -maxdepth 1 -lname "$dir/log/slurmd.log" 2>/dev/null | grep -q .; }; then
      roots="$roots $pid"
    fi
  done
  [ -n "$roots" ] || return 0
  # pid ppid for every process, then the descendants of the roots, deepest first.
  parents=$(for p in /proc/[0-9]*; do
    echo "${p#/proc/} $(awk '/^PPid:/ { print $2 }' 2>/dev/null <"$p/status")"
  done)
  awk -v roots="$roots" '
    { parent[$1] = $2 }
    END {
      n = split(roots, r, " ")
      for (i = 1; i <= n; i++) ours[r[i]] = 1
      do {
        grew = 0
        for (p in parent) if (!(p in ours) && (parent[p] in ours)) { ours[p] = ours[parent[p]] + 1; grew = 1 }
      } while (grew)
      for (p in ours) print ours[p], p
    }' <<<"$parents" | sort -k1,1nr | awk '{ print $2 }'
}

# SIGTERM, then SIGKILL after $2 s, for the pids in $1.
terminate() {
  local pids=$1 deadline p left
  [ -n "$pids" ] || return 0
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  deadline=$((SECONDS + $2))
  while [ $SECONDS -lt $deadline ]; do
    left=""
    for p in $pids; do pid_alive "$p" && left="$left $p"; done
    [ -z "$left" ] && return 0
    sleep 0.2
  done
  # shellcheck disable=SC2086
  kill -KILL $left 2>/dev/null || true
}

stop_all() {
  local quiet=${1:-}
  # Jobs first, while slurmctld and slurmd can still end them and their processes.
  if slurmctld_running && [ -s "$conf" ]; then
    local jobs deadline
    jobs=$(SLURM_CONF=$conf squeue -h -o '%i' 2>/dev/null || true)
    if [ -n "$jobs" ]; then
      # shellcheck disable=SC2086
      SLURM_CONF=$conf scancel $jobs 2>/dev/null || true
      deadline=$((SECONDS + 30))
      while [ $SECONDS -lt $deadline ] && [ -n "$(SLURM_CONF=$conf squeue -h -o '%i' 2>/dev/null || true)" ]; do
        sleep 0.2
      done
    fi
  fi
  terminate "$(our_pid "$dir/run/slurmd.pid")" 15
  terminate "$(our_pid "$dir/run/slurmctld.pid")" 15
  # Whatever the daemons left (slurmstepd outlives slurmd by design), munged last.
  local munged_pid
  munged_pid=$(our_pid "$dir/run/munged.pid")
  terminate "$(our_processes | grep -vx "${munged_pid:-none}" || true)" 10
  terminate "$munged_pid" 10
  terminate "$(our_processes)" 5
  rm -f "$dir/run/slurmd.pid" "$dir/run/slurmctld.pid" "$dir/run/munged.pid"
  if [ -s "$dir/sockets_dir" ]; then
    local sd
    sd=$(cat "$dir/sockets_dir")
    case "$sd" in /tmp/ddlm-slurm.*) rm -rf "$sd" ;; esac
    rm -f "$dir/sockets_dir"
  fi
  [ -n "$quiet" ] || echo "local_slurm: stopped in $dir"
}

case "$command" in
  start) start ;;
  stop) stop_all ;;
  env)
    [ -s "$conf" ] || die "no cluster in $dir (run: $0 start $dir)"
    printf 'export SLURM_CONF=%q\n' "$conf"
    ;;
esac
