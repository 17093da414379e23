#!/usr/bin/env bash
# Three cnm hosts on one machine (README: Multi-host walkthrough). Each "host" is a network namespace with
# an underlay address (10.199.0.1-3 on a bridge in a fourth namespace), an etcd member and a cnm daemon
# with --cluster-store on the three members. An overlay network made on host 1 appears on every host;
# sandboxes on hosts 1, 2 and 3 ping each other across it, and a VIP service made on host 1 with backends on
# hosts 2 and 3 (busybox httpd answering its name) answers host 1 from both. Everything is cnmt-* namespaces,
# cnm* links and one temp dir, removed at the end (also on failure or Ctrl-C). Needs root, iproute2, etcd
# (etcd-server), busybox and curl.
#   bash scripts/multihost-demo.sh          # KEEP=1 leaves it running until Enter is pressed
set -euo pipefail
cd "$(dirname "$0")/.."
CNM="$PWD/bin/cnm"
ID=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
UL=cnmt-ul-$ID
HOSTS=(cnmt-h1-$ID cnmt-h2-$ID cnmt-h3-$ID)
DIR=$(mktemp -d /tmp/cnmt-mh-XXXXXX)
PIDS=()

step() { printf '\n== %s\n' "$*"; }
on() { local i=$1; shift; nsenter --net="/run/netns/${HOSTS[$((i - 1))]}" "$@"; }
cnm() { local i=$1; shift; "$CNM" --host "unix://$DIR/h$i/cnm.sock" "$@"; }

cleanup() {
  # Sandboxes outlive a daemon stop (their namespaces stay pinned): remove them first, then the daemons.
  for i in 1 2 3; do cnm "$i" sandbox rm -f "s$i" "w$i" >/dev/null 2>&1 || true; done
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for ns in "${HOSTS[@]}" "$UL"; do ip netns del "$ns" 2>/dev/null || true; done
  # Whatever a failure left pinned under the temp dir.
  awk -v d="$DIR/" 'index($2, d) == 1 { print $2 }' /proc/mounts | xargs -r umount -l
  rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "underlay: a bridge and three hosts at 10.199.0.1-3"
echo "namespaces $UL ${HOSTS[*]}; state in $DIR"
ip netns add "$UL"
ip -n "$UL" link add cnmul0 type bridge && ip -n "$UL" link set cnmul0 up
for i in 1 2 3; do
  ip netns add "${HOSTS[$((i - 1))]}"
  ip -n "$UL" link add "cnmul$i" type veth peer name cnmeth0 netns "${HOSTS[$((i - 1))]}"
  ip -n "$UL" link set "cnmul$i" master cnmul0 up
  on "$i" ip addr add "10.199.0.$i/24" dev cnmeth0
  on "$i" ip link set cnmeth0 up
  on "$i" ip link set lo up
done

step "etcd: one member per host"
CLUSTER=m1=http://10.199.0.1:2380,m2=http://10.199.0.2:2380,m3=http://10.199.0.3:2380
for i in 1 2 3; do
  # nsenter execs etcd: $! is etcd's own PID, which cleanup stops.
  nsenter --net="/run/netns/${HOSTS[$((i - 1))]}" etcd --name "m$i" --data-dir "$DIR/etcd$i" \
    --listen-peer-urls "http://10.199.0.$i:2380" --initial-advertise-peer-urls "http://10.199.0.$i:2380" \
    --listen-client-urls "http://10.199.0.$i:2379" --advertise-client-urls "http://10.199.0.$i:2379" \
    --initial-cluster "$CLUSTER" --initial-cluster-state new --initial-cluster-token "cnm-demo-$ID" \
    >"$DIR/etcd$i.log" 2>&1 &
  PIDS+=($!)
done

step "cnm: one daemon per host on the etcd cluster"
STORE=etcd://10.199.0.1:2379,10.199.0.2:2379,10.199.0.3:2379
for i in 1 2 3; do
  mkdir -p "$DIR/h$i"
  nsenter --net="/run/netns/${HOSTS[$((i - 1))]}" "$CNM" daemon --root "$DIR/h$i/lib" --exec-root "$DIR/h$i" --log-level warn \
    --cluster-store "$STORE" --advertise-addr "10.199.0.$i" >"$DIR/cnm$i.log" 2>&1 &
  PIDS+=($!)
done
for i in 1 2 3; do
  for _ in $(seq 300); do cnm "$i" network ls >/dev/null 2>&1 && break; sleep 0.1; done
  cnm "$i" network ls >/dev/null || { cat "$DIR/cnm$i.log" "$DIR/etcd$i.log" >&2; exit 1; }
done

step "an overlay network made on host 1 is listed on every host"
cnm 1 network create --driver overlay --subnet 10.90.0.0/24 ov
for i in 2 3; do
  for _ in $(seq 100); do cnm "$i" network ls | grep -q ' ov ' && break; sleep 0.1; done
  echo "host $i:"; cnm "$i" network ls | grep -E 'NAME| ov '
done

step "a sandbox per host on it"
for i in 1 2 3; do cnm "$i" sandbox create "s$i" --network ov >/dev/null; done
json() { node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(eval(process.argv[1])(JSON.parse(s)[0])))' "$1"; }
ip_of() { cnm "$1" sandbox inspect "s$1" | json '(x) => x.Networks.ov.IPAddress'; }
IPS=("$(ip_of 1)" "$(ip_of 2)" "$(ip_of 3)")
echo "s1 ${IPS[0]} (host 1), s2 ${IPS[1]} (host 2), s3 ${IPS[2]} (host 3)"

step "they ping each other across hosts"
for i in 1 2 3; do
  for j in 1 2 3; do
    [ "$i" = "$j" ] && continue
    cnm "$i" exec "s$i" -- ping -c1 -W2 "${IPS[$((j - 1))]}" >/dev/null
    echo "s$i -> s$j ok"
  done
done
cnm 1 exec s1 -- ping -c1 -W2 s3 >/dev/null && echo "s1 -> s3 by name ok (embedded DNS on host 1 answers host 3's sandbox)"
echo "Peers of ov seen from host 1: $(cnm 1 network inspect ov | json '(x) => x.Peers.map((p) => p.IP).sort().join(" ")')"

step "a VIP service made on host 1, backends on hosts 2 and 3"
cnm 1 service create web --network ov >/dev/null
for i in 2 3; do
  for _ in $(seq 100); do cnm "$i" service inspect web >/dev/null 2>&1 && break; sleep 0.1; done
  cnm "$i" sandbox create "w$i" --network ov --service web >/dev/null
  mkdir -p "$DIR/www$i" && echo "w$i" >"$DIR/www$i/index.html"
  # nsenter execs httpd: $! is its PID, which cleanup stops.
  nsenter --net="$(cnm "$i" sandbox inspect "w$i" | json '(x) => x.NetnsPath')" busybox httpd -f -p 80 -h "$DIR/www$i" &
  PIDS+=($!)
done
echo "web: VIP $(cnm 1 service inspect web | json '(x) => x.VirtualIP'), backends seen from host 1: $(cnm 1 service inspect web | json '(x) => x.Backends.map((b) => `${b.SandboxName}@${b.IPv4Address}`).sort().join(" ")')"
for _ in $(seq 100); do cnm 1 exec s1 -- curl -sf -m 1 http://web/ >/dev/null && break; sleep 0.1; done
ANSWERS=$(cnm 1 exec s1 -- sh -c 'for i in $(seq 20); do curl -sf -m 2 http://web/ || echo FAIL; done' | sort | uniq -c | awk '{ printf "%s x%s ", $2, $1 }')
echo "20 requests from s1 (host 1) to http://web/: $ANSWERS"

if [ "${KEEP:-0}" = 1 ]; then
  echo "running: CNM_HOST=unix://$DIR/h1/cnm.sock bin/cnm ... (Enter ends it and removes everything)"
  read -r _
fi
step "done: removing everything"
