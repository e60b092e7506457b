#!/usr/bin/python3
"""How long a follower stays cut off after its partition heals.

    tests/lab/stall.py [LAST_PARTITION_S]     (root: network namespaces)

A 3-node kvdb-replicated cluster under a write load through every node;
one follower is isolated (iptables drops, as the lab's partitions) for 4 s,
healed for 2 s, isolated for 4 s, healed for 2 s, then isolated for
LAST_PARTITION_S (default 15).  After the last heal the script prints the
TCP connections of that follower and of the leader whose sends are in
retransmission backoff (ss: rto, backoff), then, every 0.2 s, how far the
follower's applied index is behind the leader's, its Raft state and its
health, until it has caught up.  Not a check: a measurement, for the
report of the figure "recovery through every node" (lab.py prints it).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc         # noqa: E402
import labclient     # noqa: E402
import lab          # noqa: E402
import labnet       # noqa: E402


def main():
    last = float(sys.argv[1]) if len(sys.argv) > 1 else 15.0
    dsd = os.environ.get("DSD", os.path.join(lab.TOP, "src", "dsd"))
    labnet.clean_leftovers()
    net = labnet.NetnsNet(3)
    d = tempfile.mkdtemp(prefix="dsdlab-stall.")
    stop = threading.Event()
    c = None

    def load(node):
        n = labclient.Node(net.test_addr(node))
        k = 0
        while not stop.is_set():
            k += 1
            try:
                n.kv("set", node * 10 ** 9 + k,
                     {"timestamp": 1, "data": "x"}, 1.0)
            except grpc.RpcError:
                time.sleep(0.05)
        n.close()

    try:
        net.setup()
        c = lab.Cluster(3, net, os.path.abspath(dsd), d, [])
        c.start()
        if not c.wait_serving(20)[0]:
            print("the cluster did not start")
            return 1
        ld = c.leader()
        x = [i for i in (1, 2, 3) if i != ld][0]
        for i in (1, 2, 3):
            threading.Thread(target=load, args=(i,), daemon=True).start()
        cut = {frozenset((x, j)) for j in (1, 2, 3) if j != x}
        plan = [(4, 2), (4, 2), (last, 0)]
        print("leader %d; isolating follower %d: %s (partition s, heal s)"
              % (ld, x, plan), flush=True)
        for part, heal in plan:
            net.partition(cut)
            time.sleep(part)
            net.heal()
            time.sleep(heal)
        th = time.monotonic()
        time.sleep(0.2)
        print("+0.2 s, TCP connections in retransmission backoff:")
        for who in (x, ld):
            out = subprocess.run(["ip", "netns", "exec", net.ns(who), "ss",
                                  "-tnoiH"], stdout=subprocess.PIPE,
                                 text=True).stdout.splitlines()
            for a, b in zip(out[0::2], out[1::2]):
                m = re.search(r"backoff:\d+", b)
                r = re.search(r"rto:\d+", b)
                if m:
                    print("  node %d: %s %s %s" % (who, " ".join(
                        a.split()[1:5]), r.group(0) if r else "", m.group(0)))
        prev = None
        while time.monotonic() - th < 150:
            st = c.statuses()
            L, X = st[ld], st[x]
            try:
                h = c.admin[x].health(0.5)
            except grpc.RpcError:
                h = None
            lag = (L["applied_index"] - X["applied_index"]
                   if L and X else None)
            now = "node %d: %s, leader %s, health %s" % (
                x, X and X["state"], X and X["leader_id"],
                {True: "SERVING", False: "NOT_SERVING"}.get(h, "?"))
            if now != prev or (lag is not None and lag < 50):
                print("+%5.1f s: %s, %s entries behind" % (
                    time.monotonic() - th, now, lag), flush=True)
                prev = now
            if lag is not None and lag < 50 and X["leader_id"] == ld:
                print("caught up %.1f s after the heal" %
                      (time.monotonic() - th))
                return 0
            time.sleep(0.2)
        print("not caught up after 150 s")
        return 1
    finally:
        stop.set()
        if c is not None:
            c.kill_all()
            c.close()
        net.teardown()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
