"""The lab's networks: where each node listens, how a process is started
inside its network, and partitions.

NetnsNet (the primary one): every node in its own network namespace,
joined by a veth pair to a Linux bridge in the root namespace, where the
clients run.  Addresses come from 198.18.0.0/15 only (the range reserved
for test networks): node i is 198.18.S.i, the root side 198.18.S.254, for
a /24 S no interface of the machine uses yet.  No default route anywhere.
A partition drops packets silently with iptables inside the namespaces
(INPUT -s PEER and OUTPUT -d PEER), as Jepsen does: TCP connections hang
until their timeouts, as on a cut cable.

LoopbackNet (for machines that refuse ip netns): every node on 127.0.0.1
with its own ports.  The addresses in --cluster are user-space proxies in
this process; the nodes bind elsewhere (--raft-listen, --listen).  A proxy
knows which node connects: on a Raft port from libraft's handshake (the
connecting side first sends u64 protocol version 1, u64 server id, u64
length of the address buffer, then the address, little-endian: libraft
0.15 src/uv_tcp_connect.c uvTcpEncodeHandshake, read by uv_tcp_listen.c),
on a client port (a follower passing requests on to the leader) from
/proc: the process that holds the connecting socket.  A partition stops
the relaying between the two nodes in both directions (bytes wait in the
kernel's buffers, as packets wait in retransmission), and the heal
resumes it.  The lab's own clients reach each node directly.

Names carry a prefix and the pid of the run, so that a later run can
remove what a crashed run left (its pid no longer alive) without touching
a run in progress: namespaces dsdlab-PID-nI, links dlabPIDbr (the bridge)
and dlabPIDvI (a node's root-side veth; the other end is "eth0" inside).
"""

import os
import re
import selectors
import signal
import socket
import struct
import subprocess
import threading
import time

NS_RE = re.compile(r"^dsdlab-(\d+)-n(\d+)$")
LINK_RE = re.compile(r"^dlab(\d+)(br|v\d+)$")
RAFT_PORT = 7401
CLIENT_PORT = 7379


def sh(args, check=True, input=None):
    """Run a command; return its stdout.  Raise with its stderr on failure."""
    r = subprocess.run(args, input=input, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(args), r.returncode,
                                                r.stderr.strip()))
    return r.stdout


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def clean_leftovers(log=print):
    """Remove the namespaces, links and processes of earlier lab runs whose
    process is gone.  Returns what was removed."""
    removed = []
    try:
        out = sh(["ip", "netns", "list"], check=False)
    except OSError:
        return removed
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        m = NS_RE.match(name)
        if not m or pid_alive(int(m.group(1))):
            continue
        pids = sh(["ip", "netns", "pids", name], check=False).split()
        for p in pids:
            try:
                os.kill(int(p), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        sh(["ip", "netns", "del", name], check=False)
        removed.append("netns " + name + (" (killed %s)" % " ".join(pids)
                                          if pids else ""))
    out = sh(["ip", "-o", "link", "show"], check=False)
    for line in out.splitlines():
        parts = line.split(":")
        if len(parts) < 2:
            continue
        name = parts[1].strip().split("@")[0]
        m = LINK_RE.match(name)
        if not m or pid_alive(int(m.group(1))):
            continue
        sh(["ip", "link", "del", name], check=False)
        removed.append("link " + name)
    for r in removed:
        log("lab: removed a leftover of an earlier run: " + r)
    return removed


def netns_usable():
    """(True, "") if this machine lets us make namespaces, links and rules;
    else (False, why)."""
    if os.environ.get("LAB_NO_NETNS"):
        return False, "LAB_NO_NETNS is set"
    name = "dsdlab-%d-n0" % os.getpid()
    try:
        r = subprocess.run(["ip", "netns", "add", name],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    except OSError as e:
        return False, "ip: %s" % e
    if r.returncode != 0:
        return False, "ip netns add: " + r.stderr.strip()
    try:
        r = subprocess.run(["ip", "netns", "exec", name, "iptables", "-S"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
        if r.returncode != 0:
            return False, "iptables in a namespace: " + r.stderr.strip()
        return True, ""
    except OSError as e:
        return False, "iptables: %s" % e
    finally:
        subprocess.run(["ip", "netns", "del", name], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


def loopback_usable():
    """(True, "") if TCP on 127.0.0.1 works here."""
    try:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        c = socket.create_connection(s.getsockname(), 2)
        c.close()
        s.close()
        return True, ""
    except OSError as e:
        return False, "TCP on 127.0.0.1: %s" % e


class NetnsNet:
    kind = "netns"

    def __init__(self, n, drop="both"):
        self.n = n
        self.drop = drop         # "both": INPUT -s and OUTPUT -d; "input"
        self.tag = os.getpid()
        self.subnet = None
        self.made_ns = []
        self.made_links = []
        self.blocked = frozenset()

    def ns(self, i):
        return "dsdlab-%d-n%d" % (self.tag, i)

    def ip(self, i):
        return "198.18.%d.%d" % (self.subnet, i)

    def _free_subnet(self):
        used = set(re.findall(r"inet 198\.1[89]\.(\d+)\.",
                              sh(["ip", "-4", "-o", "addr", "show"])))
        for k in range(256):
            s = (self.tag + k) % 250 + 1
            if str(s) not in used:
                return s
        raise RuntimeError("no free /24 in 198.18.0.0/16")

    def setup(self):
        self.subnet = self._free_subnet()
        br = "dlab%dbr" % self.tag
        sh(["ip", "link", "add", br, "type", "bridge"])
        self.made_links.append(br)
        sh(["ip", "addr", "add", self.ip(254) + "/24", "dev", br])
        sh(["ip", "link", "set", br, "up"])
        for i in range(1, self.n + 1):
            ns, v = self.ns(i), "dlab%dv%d" % (self.tag, i)
            sh(["ip", "netns", "add", ns])
            self.made_ns.append(ns)
            sh(["ip", "link", "add", v, "type", "veth", "peer", "name",
                "dlabtmp%d" % self.tag])
            self.made_links.append(v)
            sh(["ip", "link", "set", "dlabtmp%d" % self.tag, "netns", ns,
                "name", "eth0"])
            sh(["ip", "link", "set", v, "master", br])
            sh(["ip", "link", "set", v, "up"])
            sh(["ip", "-n", ns, "addr", "add", self.ip(i) + "/24", "dev",
                "eth0"])
            sh(["ip", "-n", ns, "link", "set", "lo", "up"])
            sh(["ip", "-n", ns, "link", "set", "eth0", "up"])
        self._wait_reachable()

    def _wait_reachable(self):
        """The bridge forwards once its ports are up: wait for it."""
        deadline = time.time() + 10
        for i in range(1, self.n + 1):
            while True:
                s = socket.socket()
                s.settimeout(0.5)
                try:
                    s.connect((self.ip(i), 9))   # nothing listens: RST
                    return
                except ConnectionRefusedError:
                    break
                except OSError:
                    if time.time() > deadline:
                        raise RuntimeError("node %d's namespace is not "
                                           "reachable over the bridge" % i)
                    time.sleep(0.1)
                finally:
                    s.close()

    def teardown(self):
        self.heal(force=True)
        for ns in self.made_ns:
            pids = sh(["ip", "netns", "pids", ns], check=False).split()
            for p in pids:
                try:
                    os.kill(int(p), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh(["ip", "netns", "del", ns], check=False)
        for link in reversed(self.made_links):
            sh(["ip", "link", "del", link], check=False)
        self.made_ns, self.made_links = [], []

    # Where node i listens.
    def raft_addr(self, i):
        return "%s:%d" % (self.ip(i), RAFT_PORT)

    def client_addr(self, i):
        return "%s:%d" % (self.ip(i), CLIENT_PORT)

    def node_args(self, i):
        return []

    def prefix(self, i):
        return ["ip", "netns", "exec", self.ns(i)]

    def test_addr(self, i):
        """Where the lab's clients reach node i."""
        return self.client_addr(i)

    def partition(self, blocked):
        """Drop every packet between the nodes of each pair in blocked
        (a set of frozenset({i, j})); pairs not listed flow."""
        self.blocked = frozenset(blocked)
        for i in range(1, self.n + 1):
            rules = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]",
                     ":OUTPUT ACCEPT [0:0]"]
            for j in range(1, self.n + 1):
                if frozenset((i, j)) in self.blocked:
                    rules.append("-A INPUT -s %s/32 -j DROP" % self.ip(j))
                    if self.drop == "both":
                        rules.append("-A OUTPUT -d %s/32 -j DROP" %
                                     self.ip(j))
            rules.append("COMMIT")
            sh(["ip", "netns", "exec", self.ns(i), "iptables-restore"],
               input="\n".join(rules) + "\n")

    def heal(self, force=False):
        if not self.blocked and not force:
            return
        self.blocked = frozenset()
        for ns in self.made_ns:
            sh(["ip", "netns", "exec", ns, "iptables", "-F"], check=False)

    def rules(self):
        """The drop rules in force, for the record: {node: [rules]}."""
        out = {}
        for i in range(1, self.n + 1):
            r = sh(["ip", "netns", "exec", self.ns(i), "iptables", "-S"],
                   check=False)
            out[i] = [x for x in r.splitlines() if "DROP" in x]
        return out


def free_ports(k):
    """k distinct free TCP ports on 127.0.0.1."""
    socks, ports = [], []
    try:
        for _ in range(k):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


class _Conn:
    """One relayed connection: a (node-side) downstream and upstream."""

    def __init__(self, proxy, down):
        self.proxy = proxy
        self.down = down
        self.up = None
        self.src = None          # the connecting node, once known
        self.head = b""          # handshake bytes read before connecting
        self.out = {}            # sock -> bytes waiting to be written to it
        self.closed = False


class LoopbackNet:
    """Nodes on 127.0.0.1; partitions by user-space proxies."""

    kind = "loopback"

    def __init__(self, n):
        self.n = n
        self.blocked = frozenset()
        self.ports = {}
        self.pids = {}           # node -> pid, told by the lab
        self.sel = None
        self.thread = None
        self.stop = False
        self.lock = threading.Lock()
        self.conns = set()
        self.wake_r = self.wake_w = None
        self.listeners = []
        self.accepted = {"raft": 0, "client": 0}
        self.unknown = {"raft": 0, "client": 0}

    def stats(self):
        return ("proxied connections: %d Raft, %d between nodes' client "
                "ports; %d and %d of unknown origin (never cut)" % (
                    self.accepted["raft"], self.accepted["client"],
                    self.unknown["raft"], self.unknown["client"]))

    def setup(self):
        p = free_ports(4 * self.n)
        for i in range(1, self.n + 1):
            k = 4 * (i - 1)
            self.ports[i] = {"raft": p[k], "raft_proxy": p[k + 1],
                             "client": p[k + 2], "client_proxy": p[k + 3]}
        self.sel = selectors.DefaultSelector()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.sel.register(self.wake_r, selectors.EVENT_READ, ("wake", None))
        for i in range(1, self.n + 1):
            for kind in ("raft", "client"):
                ls = socket.socket()
                ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                ls.bind(("127.0.0.1", self.ports[i][kind + "_proxy"]))
                ls.listen(64)
                ls.setblocking(False)
                self.listeners.append(ls)
                self.sel.register(ls, selectors.EVENT_READ,
                                  ("listen", (kind, i)))
        self.thread = threading.Thread(target=self._loop, daemon=True,
                                       name="proxy")
        self.thread.start()

    def teardown(self):
        self.stop = True
        self._wake()
        if self.thread is not None:
            self.thread.join(5)
        for c in list(self.conns):
            self._close(c)
        for ls in self.listeners:
            ls.close()
        self.listeners = []

    def raft_addr(self, i):
        return "127.0.0.1:%d" % self.ports[i]["raft_proxy"]

    def client_addr(self, i):
        return "127.0.0.1:%d" % self.ports[i]["client_proxy"]

    def node_args(self, i):
        return ["--raft-listen=127.0.0.1:%d" % self.ports[i]["raft"],
                "--listen=127.0.0.1:%d" % self.ports[i]["client"]]

    def prefix(self, i):
        return []

    def test_addr(self, i):
        return "127.0.0.1:%d" % self.ports[i]["client"]

    def set_pid(self, i, pid):
        self.pids[i] = pid

    def partition(self, blocked):
        with self.lock:
            self.blocked = frozenset(blocked)
        self._wake()

    def heal(self, force=False):
        self.partition(frozenset())

    def rules(self):
        return {"blocked": sorted(sorted(p) for p in self.blocked)}

    # -- the relay, on its own thread ------------------------------------

    def _wake(self):
        try:
            self.wake_w.send(b"x")
        except OSError:
            pass

    def _cut(self, c):
        with self.lock:
            return (c.src is not None and
                    frozenset((c.src, c.dst)) in self.blocked)

    def _interest(self, c):
        """Register what each socket of c waits for, given the partition."""
        if c.closed:
            return
        cut = self._cut(c)
        for s, other in ((c.down, c.up), (c.up, c.down)):
            if s is None:
                continue
            ev = 0
            if c.src is None:
                if s is c.down:
                    ev |= selectors.EVENT_READ    # learning who it is
            elif not cut:
                if other is not None and not c.out.get(other):
                    ev |= selectors.EVENT_READ
                if c.out.get(s):
                    ev |= selectors.EVENT_WRITE
            try:
                if ev:
                    try:
                        self.sel.modify(s, ev, ("conn", c))
                    except KeyError:
                        self.sel.register(s, ev, ("conn", c))
                else:
                    try:
                        self.sel.unregister(s)
                    except KeyError:
                        pass
            except (ValueError, OSError):
                pass

    def _close(self, c):
        if c.closed:
            return
        c.closed = True
        for s in (c.down, c.up):
            if s is None:
                continue
            try:
                self.sel.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()
        self.conns.discard(c)

    def _who(self, sock):
        """The node whose process holds the other end of sock (an accepted
        connection from 127.0.0.1), from /proc; None if unknown."""
        port = sock.getpeername()[1]
        mine = sock.getsockname()[1]
        want = "0100007F:%04X" % port
        rem = "0100007F:%04X" % mine
        inode = None
        try:
            with open("/proc/net/tcp") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) > 9 and parts[1] == want and \
                            parts[2] == rem:
                        inode = parts[9]
                        break
        except OSError:
            return None
        if inode is None:
            return None
        target = "socket:[%s]" % inode
        for node, pid in list(self.pids.items()):
            try:
                for fd in os.listdir("/proc/%d/fd" % pid):
                    try:
                        if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == \
                                target:
                            return node
                    except OSError:
                        pass
            except OSError:
                pass
        return None

    def _accept(self, kind, node, ls):
        try:
            down, _ = ls.accept()
        except OSError:
            return
        down.setblocking(False)
        c = _Conn(self, down)
        c.kind, c.dst = kind, node
        self.conns.add(c)
        self.accepted[kind] += 1
        if kind == "client":
            c.src = self._who(down)
            if c.src is None:
                c.src = 0        # not a node (should not happen): never cut
                self.unknown["client"] += 1
            self._connect_up(c)
        self._interest(c)

    def _connect_up(self, c):
        up = socket.socket()
        up.setblocking(False)
        port = self.ports[c.dst][c.kind]
        try:
            up.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        except OSError:
            up.close()
            self._close(c)
            return
        c.up = up
        if c.head:
            c.out[up] = c.head
            c.head = b""

    def _handshake(self, c, data):
        """Learn the connecting node of a Raft connection from its first
        bytes: u64 protocol (1), u64 server id (LE)."""
        c.head += data
        if len(c.head) < 16:
            return
        proto, sid = struct.unpack_from("<QQ", c.head, 0)
        c.src = sid if proto == 1 and 1 <= sid <= self.n else 0
        if c.src == 0:
            self.unknown["raft"] += 1
        self._connect_up(c)

    def _io(self, c, s, mask):
        if c.closed:
            return
        if mask & selectors.EVENT_WRITE:
            buf = c.out.get(s, b"")
            try:
                n = s.send(buf)
                c.out[s] = buf[n:]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self._close(c)
                return
        if mask & selectors.EVENT_READ:
            try:
                data = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                data = b""
            if data == b"":
                self._close(c)
                return
            if data:
                if c.src is None:
                    self._handshake(c, data)
                else:
                    other = c.up if s is c.down else c.down
                    c.out[other] = c.out.get(other, b"") + data
        self._interest(c)

    def _loop(self):
        while not self.stop:
            for key, mask in self.sel.select(0.5):
                what, arg = key.data
                if what == "wake":
                    try:
                        self.wake_r.recv(4096)
                    except OSError:
                        pass
                    for c in list(self.conns):
                        self._interest(c)
                elif what == "listen":
                    self._accept(arg[0], arg[1], key.fileobj)
                else:
                    self._io(arg, key.fileobj, mask)
