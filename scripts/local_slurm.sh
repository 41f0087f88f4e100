#!/usr/bin/env bash
# A one-node SLURM on this machine, to try `hydra/launcher=slurm` without a cluster (docs/CLUSTERS.md).
#
#   sudo bash scripts/local_slurm.sh start    # install slurm-wlm + munge if missing, configure, start, wait for idle
#   bash scripts/local_slurm.sh status        # sinfo and the queue
#   sudo bash scripts/local_slurm.sh stop     # stop the daemons
#   sudo bash scripts/local_slurm.sh clean    # stop, then remove the state and the config this script wrote
#
# Debian/Ubuntu (apt-get) and root are needed for start/stop/clean. The node gets this host's cores and its
# memory less 1 GiB; one partition, `debug`, with a MaxTime of LOCAL_SLURM_MAXTIME minutes (default 30), so the
# time-limit and requeue paths can be tried in minutes. A slurm.conf this script did not write is never replaced.
set -euo pipefail

CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
MARK="# written by rnnlm scripts/local_slurm.sh"
STATE=/var/spool/slurmctld
SPOOL=/var/spool/slurmd
LOGS=/var/log/slurm
MAXTIME=${LOCAL_SLURM_MAXTIME:-30}

die() { echo "local_slurm: $*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "'$1' changes system services: run it as root (sudo bash $0 $1)."; }

install_packages() {
  command -v slurmctld >/dev/null && command -v munged >/dev/null && return
  command -v apt-get >/dev/null || die "slurm-wlm and munge are not installed and apt-get is missing: install them with this system's package manager."
  echo "local_slurm: installing slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q slurm-wlm munge >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q slurm-wlm munge >/dev/null; } \
    || die "apt-get could not install slurm-wlm and munge (see its output above): check the package sources."
}

write_conf() {
  if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    echo "local_slurm: $CONF exists and was not written by this script: using it as it is"
    return
  fi
  local host cpus mem_mb
  host=$(hostname -s)
  cpus=$(nproc)
  mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  mkdir -p "$CONF_DIR" "$STATE" "$SPOOL" "$LOGS"
  cat > "$CONF.tmp" <<EOF
$MARK
ClusterName=local
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$STATE
SlurmdSpoolDir=$SPOOL
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
# no cgroups in containers: plain process tracking, no task binding, no accounting
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# a job at its time limit gets SIGTERM, then KillWait seconds before SIGKILL; requeued jobs may run again
KillWait=30
JobRequeue=1
MinJobAge=300
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=$MAXTIME State=UP
EOF
  mv "$CONF.tmp" "$CONF"
  echo "local_slurm: wrote $CONF ($host: $cpus CPUs, $mem_mb MB, partition debug, MaxTime $MAXTIME min)"
}

start_munge() {
  pgrep -x munged >/dev/null && return
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  mkdir -p /run/munge /var/lib/munge /var/log/munge
  chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
  chmod 0400 /etc/munge/munge.key
  runuser -u munge -- munged || die "munged did not start: see /var/log/munge/munged.log."
}

wait_idle() {
  local state=""
  for _ in $(seq 60); do
    state=$(sinfo -h -o %T 2>/dev/null | head -1 || true)
    case $state in idle*) echo "local_slurm: node idle, partition debug ready"; return ;; esac
    sleep 1
  done
  die "the node did not become idle within 60 s (state: '${state:-none}'): see $LOGS/slurmd.log and $LOGS/slurmctld.log."
}

start() {
  need_root start
  install_packages
  write_conf
  start_munge
  pgrep -x slurmctld >/dev/null || slurmctld || die "slurmctld did not start: see $LOGS/slurmctld.log."
  pgrep -x slurmd >/dev/null || slurmd || die "slurmd did not start: see $LOGS/slurmd.log."
  wait_idle
}

stop() {
  need_root stop
  for daemon in slurmd slurmctld munged; do
    pkill -x "$daemon" 2>/dev/null || true
  done
  for _ in $(seq 30); do
    pgrep -x slurmd >/dev/null || pgrep -x slurmctld >/dev/null || pgrep -x munged >/dev/null || break
    sleep 1
  done
  echo "local_slurm: stopped"
}

clean() {
  need_root clean
  stop
  rm -rf "$STATE" "$SPOOL"
  if [ -f "$CONF" ] && grep -qF "$MARK" "$CONF"; then rm -f "$CONF"; fi
  echo "local_slurm: state and this script's slurm.conf removed"
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  clean) clean ;;
  status) sinfo; squeue ;;
  *) die "usage: $0 start|status|stop|clean" ;;
esac
