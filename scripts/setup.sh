#!/usr/bin/env bash
# Installs what cnm needs on a fresh Debian machine (as root): the Debian packages listed in
# scripts/programs.tsv for the given use, and the npm dependencies. Idempotent and quiet when
# everything is already there.
#
#   bash scripts/setup.sh [daemon|test|bench] [--dry-run]
#     daemon  what the daemon and the cnm CLI run (default)
#     test    daemon + what `npm test` runs
#     bench   everything (the benchmarks too); a failed install only warns, the bench reports what is missing
#     --dry-run  print the packages that would be installed (one per line) and change nothing
#
# Packages with services (docker.io, containerd, etcd-server) must not start them: dockerd in the
# machine's own namespace would create docker0 and firewall rules on the machine's network, and a
# system etcd would serve on the machine's port 2379. The install runs with a policy-rc.d that denies
# every start and inside a throwaway network namespace, and is checked afterwards (no new
# dockerd/containerd/etcd process, no new docker0 link); etcd.service is masked (the tests start their
# own members in throwaway namespaces), so a reboot does not start it either.
set -euo pipefail
cd "$(dirname "$0")/.."

use=daemon
dry_run=0
for arg in "$@"; do
  case "$arg" in
    daemon | test | bench) use=$arg ;;
    --dry-run) dry_run=1 ;;
    *) echo "usage: $0 [daemon|test|bench] [--dry-run]" >&2; exit 2 ;;
  esac
done
case "$use" in
  daemon) wanted=(daemon) ;;
  test) wanted=(daemon test) ;;
  bench) wanted=(daemon test bench) ;;
esac

# sbin directories too: a non-root PATH often lacks them, and ip/nft/sysctl live there; /usr/lib/cni is
# where Debian puts the CNI plugins (portmap).
# CNM_SETUP_PATH replaces this search path (the setup test uses it to play a machine that lacks programs).
search_path="${CNM_SETUP_PATH:-$PATH:/usr/local/sbin:/usr/sbin:/sbin:/usr/lib/cni}"

program_ok() { # NAME CHECK
  local path
  if [[ "$1" == *.so* ]]; then
    { PATH="$PATH:/usr/sbin:/sbin" ldconfig -p 2>/dev/null || true; } | grep -q "^[[:space:]]*$1 " && return 0
    compgen -G "/usr/lib/*/$1" >/dev/null || compgen -G "/lib/*/$1" >/dev/null || compgen -G "/usr/lib/$1" >/dev/null
    return
  fi
  path=$(PATH="$search_path" command -v "$1" 2>/dev/null) || return 1
  if [ "$2" = static ]; then
    # Debian's dynamic `busybox` also installs /bin/busybox; a container image needs the static build.
    ! LC_ALL=C ldd "$path" >/dev/null 2>&1
    return
  fi
  return 0
}

need=()
while IFS=$'\t' read -r program package for check _; do
  [[ -z "$program" || "$program" == \#* ]] && continue
  used=0
  for w in "${wanted[@]}"; do [[ ",$for," == *",$w,"* ]] && used=1; done
  [ "$used" -eq 1 ] || continue
  program_ok "$program" "$check" && continue
  [[ " ${need[*]-} " == *" $package "* ]] || need+=("$package")
done <scripts/programs.tsv

if [ "$dry_run" -eq 1 ]; then
  [ "${#need[@]}" -eq 0 ] || printf '%s\n' "${need[@]}"
  exit 0
fi

daemons_running() { # the names of running dockerd/containerd processes, sorted
  local f
  for f in /proc/[0-9]*/comm; do
    { read -r c <"$f"; } 2>/dev/null || continue
    case "$c" in dockerd | containerd | etcd) echo "$c" ;; esac
  done | sort
}

policy=/usr/sbin/policy-rc.d
policy_saved=
policy_ours=0
deny_service_starts() {
  # An existing policy that already denies (exit 101) every start we could meet is left alone;
  # anything else is set aside for the length of the install and put back afterwards.
  if [ -x "$policy" ]; then
    local unit rc denies=1
    for unit in docker docker.service docker.socket containerd containerd.service etcd etcd.service; do
      rc=0
      "$policy" "$unit" start >/dev/null 2>&1 || rc=$?
      [ "$rc" = 101 ] || denies=0
    done
    [ "$denies" -eq 0 ] || return 0
  fi
  if [ -e "$policy" ]; then
    policy_saved="$policy.cnm-setup-$$"
    mv "$policy" "$policy_saved"
  fi
  printf '#!/bin/sh\n# written by cnm scripts/setup.sh for the length of one install: no service starts\nexit 101\n' >"$policy"
  chmod 0755 "$policy"
  policy_ours=1
}
restore_policy() {
  if [ "$policy_ours" -eq 1 ]; then
    rm -f "$policy"
    [ -z "$policy_saved" ] || mv "$policy_saved" "$policy"
    policy_ours=0
  fi
}

mask_etcd_service() {
  # What `systemctl mask` does, also where systemd is not running (containers, chroots).
  if ! systemctl mask etcd.service >/dev/null 2>&1; then
    ln -sfn /dev/null /etc/systemd/system/etcd.service
  fi
}

install_packages() {
  local before after docker0_before=0
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends --download-only "$@" >/dev/null
  before=$(daemons_running)
  [ ! -e /sys/class/net/docker0 ] || docker0_before=1
  trap restore_policy EXIT
  deny_service_starts
  # Without network: a service that started anyway could not touch the machine's own.
  unshare --net -- apt-get install -y -qq --no-install-recommends --no-download "$@" >/dev/null
  restore_policy
  trap - EXIT
  case " $* " in *" etcd-server "*) mask_etcd_service ;; esac
  after=$(daemons_running)
  if [ "$after" != "$before" ]; then
    echo "setup: installing $* started a service (running now: ${after//$'\n'/ }); stop it: cnm's tests must not share the machine's namespace with it" >&2
    return 1
  fi
  if [ "$docker0_before" -eq 0 ] && [ -e /sys/class/net/docker0 ]; then
    echo "setup: installing $* created docker0 in this namespace" >&2
    return 1
  fi
}

if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "cnm ($use) needs these Debian packages: ${need[*]} (run as root to install them)" >&2
    [ "$use" = bench ] || exit 1
  else
    echo "installing Debian packages for $use: ${need[*]}" >&2
    if ! install_packages "${need[@]}"; then
      [ "$use" = bench ] || exit 1
      echo "setup: some packages did not install; the bench reports what it has to leave out" >&2
    fi
  fi
fi

# npm dependencies: reinstall when node_modules is missing or older than the lock file.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "installing npm dependencies" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
