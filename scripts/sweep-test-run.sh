#!/usr/bin/env bash
# Removes what ONE test run left behind, and nothing of any other run or program:
#   - processes whose environment carries the run's token (CNM_TEST_RUN=<token>: scripts/test.sh exports
#     it, every test file and everything it spawns inherits it) are killed;
#   - mounts below, and then the directories noted in <run dir>/dir/ are removed (daemon, etcd,
#     containerd and dockerd temp dirs: test/helpers/teardown.ts noteForSweep);
#   - the namespaces noted in <run dir>/netns/ are deleted;
#   - the run dir itself goes.
# A helper forgets its note once it has removed the thing itself, so after a clean run there is nothing
# to do. What is left comes from a test file killed outright (SIGKILL) or a teardown that failed.
#
#   bash scripts/sweep-test-run.sh RUN_DIR TOKEN      (prints one line per thing it removed)
# Run it with CNM_TEST_RUN unset in its own environment (scripts/test.sh uses env -u), or it would kill itself.
set -uo pipefail
run_dir=${1:?run dir}
token=${2:?token}
[[ "$token" =~ ^[A-Za-z0-9-]{8,}$ ]] || { echo "sweep: bad token '$token'" >&2; exit 2; }

for round in 1 2 3; do
  killed=0
  for environ in /proc/[0-9]*/environ; do
    pid=${environ#/proc/}
    pid=${pid%/environ}
    [ "$pid" != "$$" ] || continue
    if grep -qzxF "CNM_TEST_RUN=$token" "$environ" 2>/dev/null; then
      echo "sweep: killing process $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-120))"
      kill -KILL "$pid" 2>/dev/null && killed=$((killed + 1))
    fi
  done
  [ "$killed" -gt 0 ] || break
  sleep 0.2
done

if [ -d "$run_dir/dir" ]; then
  for note in "$run_dir"/dir/*; do
    [ -f "$note" ] || continue
    dir=$(cat "$note")
    case "$dir" in /*/cnmt-*) ;; *) echo "sweep: not a test dir, left alone: $dir" >&2; continue ;; esac
    # Deepest first: pins (namespace bind mounts) below a daemon's exec root, dockerd's overlay mounts.
    awk '{print $5}' /proc/self/mountinfo | grep -F -- "$dir/" | awk '{print length, $0}' | sort -rn | cut -d' ' -f2- |
      while read -r mount; do
        echo "sweep: unmounting $mount"
        umount -l "$mount" 2>/dev/null
      done
    if [ -e "$dir" ]; then
      echo "sweep: removing $dir"
      rm -rf --one-file-system "$dir"
    fi
  done
fi

if [ -d "$run_dir/netns" ]; then
  for note in "$run_dir"/netns/*; do
    [ -f "$note" ] || continue
    name=$(cat "$note")
    case "$name" in cnmt-*) ;; *) echo "sweep: not a test namespace, left alone: $name" >&2; continue ;; esac
    if [ -e "/run/netns/$name" ]; then
      echo "sweep: deleting namespace $name"
      ip netns del "$name" 2>/dev/null
    fi
  done
fi

rm -rf "$run_dir"
