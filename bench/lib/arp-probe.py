#!/usr/bin/env python3
"""ARP probes (RFC 5227: sender address 0.0.0.0) from one interface to many IPv4 addresses at once.

Usage: arp-probe.py IFNAME TIMEOUT_MS IP[=MAC] ...   (run inside the namespace that owns IFNAME)
Prints every address that answered, one per line.

Why ARP probes and not ping: the neighbour table is one table for the whole machine (gc_thresh3 = 1024
entries across every namespace by default), and pinging N endpoints creates 2N entries (one on each
side), so at 1,000 endpoints most pings fail with "neighbor table overflow". A probe's sender address
is 0.0.0.0, so the endpoint answers without learning a neighbour, and this script reads the answer
from a packet socket, so the host side learns none either. An answer proves the endpoint's namespace,
both veth ends, the bridge port and the address are in place. With a known MAC the probe is sent
unicast, so 1,000 probes are not each flooded to 1,000 bridge ports.
"""
import select
import socket
import struct
import sys
import time

ETH_P_ARP = 0x0806
BROADCAST = b"\xff" * 6


SO_RCVBUFFORCE = 33


def main() -> None:
    ifname, timeout_ms, targets = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    # Room for every reply at once (root may exceed net.core.rmem_max).
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
    sock.bind((ifname, ETH_P_ARP))
    own_mac = sock.getsockname()[4]
    pending = {socket.inet_aton(t.partition("=")[0]): t.partition("=")[0] for t in targets}
    answered = []

    def drain(wait: float) -> bool:
        ready, _, _ = select.select([sock], [], [], wait)
        if not ready:
            return False
        frame = sock.recv(2048)
        # An ARP reply (opcode 2) from an address we asked about.
        if len(frame) >= 42 and struct.unpack("!H", frame[20:22])[0] == 2 and frame[28:32] in pending:
            answered.append(pending.pop(frame[28:32]))
        return True

    for i, target in enumerate(targets):
        ip, _, mac = target.partition("=")
        dst = bytes.fromhex(mac.replace(":", "")) if mac else BROADCAST
        arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, own_mac, b"\0" * 4, b"\0" * 6, socket.inet_aton(ip))
        sock.send(dst + own_mac + struct.pack("!H", ETH_P_ARP) + arp)
        if i % 64 == 63:
            while drain(0):
                pass
    deadline = time.monotonic() + timeout_ms / 1000
    while pending and time.monotonic() < deadline:
        drain(max(0.0, deadline - time.monotonic()))
    sys.stdout.write("".join(f"{ip}\n" for ip in answered))

main()
