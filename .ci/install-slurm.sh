#!/usr/bin/env bash
# Install a single-node SLURM (Debian's slurm-wlm) and MUNGE for the tests; idempotent.
#
#   sudo .ci/install-slurm.sh
#
# Installs the packages only when `slurmctld` is missing, and creates a MUNGE key only when
# /etc/munge/munge.key is missing. Starts no daemon: tests/slurm_cluster.py writes its own
# slurm.conf in a temporary folder and starts munged, slurmctld and slurmd itself.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "install-slurm.sh: must run as root" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive

if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
    # The package lists of a fresh machine may be empty or stale.
    apt-get update -qq
    # slurm-wlm pulls in slurmctld, slurmd and the client commands (sbatch, squeue, sinfo, ...).
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

# The package's post-install script may have started daemons with the packaged (unconfigured)
# slurm.conf; they would hold the ports the test cluster needs. Stop only slurm services the
# package started through the service manager, never anything else.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl stop slurmctld slurmd >/dev/null 2>&1 || true
fi

install -d -o munge -g munge -m 0700 /etc/munge
if [ ! -s /etc/munge/munge.key ]; then
    # 1024 random bytes, as mungekey(8) makes.
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key

# Runtime folders munged expects (not persistent on a fresh container).
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge

command -v slurmctld slurmd munged sbatch squeue sinfo
