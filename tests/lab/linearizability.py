#!/usr/bin/python3
"""Linearizability checker for kvdb histories written by the cluster lab.

Usage: linearizability.py HISTORY.jsonl [--json] [--key K]
Exit status: 0 linearizable, 1 not linearizable, 2 bad input.
Importable: check_history(events) -> CheckResult (events are the parsed
JSON objects, in file order); load_history(path) reads a file.

The model (src/kv/store.c, store_apply)
    Keys are independent.  A key is absent or holds (version, timestamp,
    data); every key starts absent.  Results are (status, value):
    set(ts, d)           absent: SUCCESS, null; now (1, ts, d).
                         present: ERROR, current value.
    get()                present: SUCCESS, current value.  absent: ERROR, null.
    del()                present: SUCCESS, old value; now absent.
                         absent: ERROR, null.
    delversion(v)        absent: ERROR_NE, null.  version != v: ERROR_WV,
                         current value.  else SUCCESS, old value; now absent.
    testandset(ts, d, v) absent: ERROR_NE, null.  version != v: ERROR_WV,
                         current value.  version == 2**63-1: ERROR, current
                         value.  else SUCCESS, old value; now (v+1, ts, d).

The history
    JSON lines, Jepsen style: {"type":"invoke", "process", "f", "key",
    "arg", "time"} opens a process's operation; {"type":"ok"|"fail"|"info",
    ...} completes it.  ok results must match the model exactly (status and
    every field of the value).  fail: the operation did not take effect; it
    is left out.  info, or an invoke never completed: unknown; the operation
    may take effect at any moment after its invocation, or never, with any
    result.  Keys are compared after integer normalisation ("007" is "7").
    Events are ordered by time; at equal times an invocation is taken to
    come before a completion, so that a tie counts as overlap (the weaker
    claim: we never report a violation that rests on a tie).  A last line
    cut short (the writer died) is ignored with a warning; any other bad
    line is bad input.

The search (per key: linearizability is compositional)
    Wing and Gong's search with Lowe's memoisation, as Knossos' linear/wgl
    and Porcupine do it: call and return entries in a doubly linked list
    ordered by time; the candidates are the calls ahead of the first
    remaining return; linearizing one lifts its entries out of the list;
    configurations (linearized set as an int bitset, model state) already
    explored are not explored again; an explicit stack replaces recursion.
    Unknown operations have no return entry, and the search succeeds once
    every ok operation is linearized.  Operations with a known result are
    tried before unknown ones.  Reductions, each exact for this model
    (the comments at _search, _blind and _classify give the arguments):
    - an ok operation whose result matches and leaves the state as it is
      is linearized at once and no alternative is tried: moving it earlier
      changes no state another operation sees.  Its result names the state
      it saw (ERROR_NE and null-valued ERROR mean absent, the rest carry
      the value), so it could not have changed the state anywhere else;
    - an unknown operation that would leave the state as it is is not
      linearized there: leaving it pending keeps every option open;
    - a configuration is not explored if an explored one has the same ok
      operations and state and a subset of its unknown operations;
    - interchangeable unknown operations (same operation and arguments,
      or writes of values no result shows, of the same version) are
      applied in invocation order only, and an unknown delversion is
      preferred to an unknown delete that would do the same;
    - an unknown write of a value that no operation able to act before
      the next known result can see is not applied: as every ok result on
      a present key shows its value, only unknown operations could act
      while the key holds it, and the run from the write to a delete can
      be dropped.  This keeps old info operations, which stay candidates
      for ever, from multiplying the configurations.

The smallest failing window (reported for each failing key)
    Operations are ordered by invocation.  A prefix of the history is the
    history cut at some moment: operations invoked later are dropped, and
    operations not completed by then become unknown.
    - The end E is the operation whose completion is the earliest at which
      the prefix ending there cannot be linearized: the operation that
      cannot be explained.  (Prefixes of a linearizable history are
      linearizable, so it is found by bisection, starting where the
      search of the whole history got stuck.)
    - The possible states at an operation s: the final states of the
      valid linearizations of the operations invoked before s (all those
      that returned before s in, every result known by E's completion
      respected), found by the same search run to exhaustion; and, for
      each, the state just before its last change.  That one-change lag
      puts in the window the write that a stale read contradicts, instead
      of reporting the read alone; it is still a superset of the exact
      states, so the witness stays sound.  States that only unknown
      operations could act on, and that no result up to E shows, are left
      out (they would change no window's verdict).
    - The window from s holds the operations of E's prefix invoked at or
      after s, and those invoked before s and still in flight at its
      invocation (unknown, or completing after it).  In-flight operations
      are optional in the window: they may have taken effect before s.
      Operations that cannot matter are not shown: unknown writes of
      values no operation in the window could see, unknown testandsets
      and delversions of a version the key cannot reach.
    - The start is the latest operation s (at or before E) such that the
      window from s cannot be linearized from any of the possible states
      at s.  From the first operation the window is the whole prefix from
      the absent state, so there always is one.
    A failing window is a self-contained witness: if the history were
    linearizable, its linearization, cut at s's invocation, would leave
    one of the possible states (or one that serves as well) and linearize
    the window from there.
"""

import argparse
import bisect
import json
import re
import sys
import time

MAX_VERSION = 2 ** 63 - 1

# Operation codes: small ints keep the search's inner loop cheap.
SET, GET, DEL, DELVERSION, TESTANDSET = range(5)
FNAMES = ("set", "get", "del", "delversion", "testandset")
FCODES = {name: code for code, name in enumerate(FNAMES)}
STATUSES = ("SUCCESS", "ERROR", "ERROR_NE", "ERROR_WV")

OK, FAIL, INFO, UNFINISHED = "ok", "fail", "info", "unfinished"

_KEY_RE = re.compile(r"([+-]?)0*([0-9]+)")


class HistoryError(Exception):
    """The history cannot be read or makes no sense (exit status 2)."""


def step(state, f, args):
    """Apply one operation to one key; return (new state, (status, value)).

    state is None (absent) or (version, timestamp, data); args is the
    argument tuple Op.args: (ts, data) for set, () for get and del,
    (version,) for delversion, (ts, data, version) for testandset."""
    if f == GET:
        if state is None:
            return None, ("ERROR", None)
        return state, ("SUCCESS", state)
    if f == SET:
        if state is None:
            return (1, args[0], args[1]), ("SUCCESS", None)
        return state, ("ERROR", state)
    if f == DEL:
        if state is None:
            return None, ("ERROR", None)
        return None, ("SUCCESS", state)
    if state is None:
        return None, ("ERROR_NE", None)
    if f == DELVERSION:
        if state[0] != args[0]:
            return state, ("ERROR_WV", state)
        return None, ("SUCCESS", state)
    # TESTANDSET
    if state[0] != args[2]:
        return state, ("ERROR_WV", state)
    if state[0] == MAX_VERSION:
        return state, ("ERROR", state)
    return (args[2] + 1, args[0], args[1]), ("SUCCESS", state)


class Op:
    """One operation on one key: an invocation and perhaps its completion.

    call_pos and ret_pos are the ranks of its entries in the key's time
    order; ret_pos is None unless the outcome is ok (an info's return is
    at infinity, a fail is not searched)."""

    __slots__ = ("index", "process", "f", "key", "arg", "args", "outcome",
                 "result", "expected", "invoke_time", "complete_time",
                 "invoke_line", "complete_line", "call_pos", "ret_pos",
                 "cls")

    def __init__(self, index, process, f, key, arg, args, invoke_time,
                 invoke_line):
        self.index = index
        self.process = process
        self.f = f
        self.key = key
        self.arg = arg
        self.args = args
        self.outcome = UNFINISHED
        self.result = None
        self.expected = None
        self.invoke_time = invoke_time
        self.complete_time = None
        self.invoke_line = invoke_line
        self.complete_line = None
        self.call_pos = None
        self.ret_pos = None
        self.cls = None

    @property
    def unknown(self):
        return self.outcome in (INFO, UNFINISHED)


# ---------------------------------------------------------------- parsing

def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _norm_key(k):
    """Decimal key to its canonical string ("007" and "+7" are "7").

    Done by hand: int() refuses strings over 4300 digits by default."""
    if _is_int(k):
        return str(k)
    if not isinstance(k, str):
        return None
    m = _KEY_RE.fullmatch(k.strip())
    if m is None:
        return None
    sign = m.group(1) if m.group(2) != "0" else ""
    return ("-" if sign == "-" else "") + m.group(2)


def _parse_args(f, a):
    """The argument tuple for f from the JSON arg, or None if malformed."""
    if f in (GET, DEL):
        return ()
    if not isinstance(a, dict):
        return None
    if f == DELVERSION:
        return (a["version"],) if _is_int(a.get("version")) else None
    if not (_is_int(a.get("timestamp")) and isinstance(a.get("data"), str)):
        return None
    if f == SET:
        return (a["timestamp"], a["data"])
    if not _is_int(a.get("version")):
        return None
    return (a["timestamp"], a["data"], a["version"])


def _parse_value(v):
    if v is None:
        return None
    if (isinstance(v, dict) and _is_int(v.get("version")) and
            _is_int(v.get("timestamp")) and isinstance(v.get("data"), str)):
        return (v["version"], v["timestamp"], v["data"])
    raise ValueError


def _parse_result(r):
    """(status, value) from an ok completion's result; ValueError if bad."""
    if not isinstance(r, dict) or r.get("status") not in STATUSES:
        raise ValueError
    return (r["status"], _parse_value(r.get("value")))


def _pair(events, lines):
    """Match completions to invocations; return (ops, first time)."""
    ops = []
    outstanding = {}
    t0 = None
    for n, ev in enumerate(events):
        where = "line %d" % lines[n] if lines else "event %d" % (n + 1)
        if not isinstance(ev, dict):
            raise HistoryError("%s: not a JSON object" % where)
        typ, p, t = ev.get("type"), ev.get("process"), ev.get("time")
        if typ not in ("invoke", OK, FAIL, INFO):
            raise HistoryError("%s: bad type %r" % (where, typ))
        if isinstance(p, (dict, list)) or p is None:
            raise HistoryError("%s: bad process %r" % (where, p))
        if not _is_int(t):
            raise HistoryError("%s: time is not an integer" % where)
        # A completion may leave f and key out: they are the invocation's.
        f = key = None
        if typ == "invoke" or "f" in ev:
            f = FCODES.get(ev.get("f"))
            if f is None:
                raise HistoryError("%s: unknown f %r" % (where, ev.get("f")))
        if typ == "invoke" or "key" in ev:
            key = _norm_key(ev.get("key"))
            if key is None:
                raise HistoryError("%s: bad key %r" % (where, ev.get("key")))
        t0 = t if t0 is None else min(t0, t)
        line = lines[n] if lines else n + 1
        if typ == "invoke":
            if p in outstanding:
                raise HistoryError("%s: process %r invokes with an operation "
                                   "outstanding" % (where, p))
            args = _parse_args(f, ev.get("arg"))
            if args is None:
                raise HistoryError("%s: bad arg %r for %s" %
                                   (where, ev.get("arg"), FNAMES[f]))
            op = Op(len(ops), p, f, key, ev.get("arg"), args, t, line)
            ops.append(op)
            outstanding[p] = op
            continue
        op = outstanding.pop(p, None)
        if op is None:
            raise HistoryError("%s: %s completion for process %r with no "
                               "operation outstanding" % (where, typ, p))
        if f not in (None, op.f) or key not in (None, op.key):
            raise HistoryError("%s: completion does not match process %r's "
                               "invocation (line %d)" % (where, p,
                                                         op.invoke_line))
        if t < op.invoke_time:
            raise HistoryError("%s: completes before its invocation" % where)
        op.outcome = typ
        op.complete_time = t
        op.complete_line = line
        op.result = ev.get("result")
        if typ == OK:
            try:
                op.expected = _parse_result(op.result)
            except ValueError:
                raise HistoryError("%s: bad result %r" %
                                   (where, op.result)) from None
    return ops, (t0 if t0 is not None else 0)


def load_history(path):
    """Read a JSON-lines history: return (events, line numbers, warnings).

    A last line that does not parse is a record cut short by a dying
    writer: it is dropped with a warning.  Any other bad line raises."""
    try:
        with open(path, "rb") as fp:
            raw = fp.read()
    except OSError as e:
        raise HistoryError("%s: %s" % (path, e.strerror)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        # A cut can split a multi-byte character; only the last line may.
        cut = raw.rfind(b"\n") + 1
        try:
            text = raw[:cut].decode("utf-8") + raw[cut:].decode(
                "utf-8", "replace")
        except UnicodeDecodeError:
            raise HistoryError("%s: not UTF-8" % path) from None
    numbered = [(n, s) for n, s in enumerate(text.split("\n"), 1) if s.strip()]
    events, lines, warnings = [], [], []
    for k, (n, s) in enumerate(numbered):
        try:
            events.append(json.loads(s))
            lines.append(n)
        except ValueError:
            if k == len(numbered) - 1:
                warnings.append("line %d: truncated last line ignored" % n)
            else:
                raise HistoryError("line %d: not JSON" % n) from None
    return events, lines, warnings


# ----------------------------------------------------------------- search

INF = 1 << 62               # a position after every entry
NONE = False                # "no earlier state": None is the absent state


class _Item:
    """An operation as one search sees it.

    ret_pos None makes it optional (it need not be linearized); expected
    None makes its result free."""

    __slots__ = ("op", "f", "args", "cls", "expected", "call_pos",
                 "ret_pos")

    def __init__(self, op, expected, ret_pos):
        self.op = op
        self.f = op.f
        self.args = op.args
        self.cls = op.cls
        self.expected = expected
        self.call_pos = op.call_pos
        self.ret_pos = ret_pos


def _out(f, args):
    """The value a write leaves, or None if f never writes."""
    if f == SET:
        return (1, args[0], args[1])
    if f == TESTANDSET and args[2] != MAX_VERSION:
        return (args[2] + 1, args[0], args[1])
    return None


def _search(items, init_states, collect=False, keep_for=(), reach=None):
    """Try to linearize items from each of init_states.

    Without collect: True as soon as one linearization covers every
    mandatory item, False if none does.  reach, a list, gets the furthest
    return position any configuration got to: every mandatory item that
    returns before it was linearized there.

    With collect: explore everything and return {(state, prev): {(eff,
    R)}} over the configurations reached: prev is the state before the
    last change on the way there (NONE if none), eff the latest call_pos
    among the items that changed the state (-1 if none), R the position of
    the first return still to come (INF if none).  Such a configuration,
    less its no-change items invoked after eff, is a valid linearization
    of the operations invoked before any position c with eff < c < R, and
    covers all those that returned before c: state is possible at c.
    keep_for: operations of later searches that start from the states
    collected here; a value they could see or act on is never pruned."""
    n = len(items)
    ents = []
    for i, it in enumerate(items):
        ents.append((it.call_pos, 0, i))
        if it.ret_pos is not None:
            ents.append((it.ret_pos, 1, i))
    ents.sort()
    m = len(ents)
    # A circular doubly linked list over nodes 1..m with node 0 as head.
    nxt = list(range(1, m + 1)) + [0]
    prv = [m] + list(range(m))
    node_item = [-1] * (m + 1)
    node_ret = [False] * (m + 1)
    node_pos = [INF] * (m + 1)
    call_node = [0] * n
    ret_node = [0] * n
    for k, (pos, is_ret, i) in enumerate(ents, 1):
        node_item[k] = i
        node_ret[k] = bool(is_ret)
        node_pos[k] = pos
        if is_ret:
            ret_node[i] = k
        else:
            call_node[i] = k

    # Separate bitsets for mandatory and optional items: dominance compares
    # the optional ones as sets.
    fs = [it.f for it in items]
    argss = [it.args for it in items]
    exps = [it.expected for it in items]
    clss = [it.cls for it in items]
    calls = [it.call_pos for it in items]
    mand = [it.ret_pos is not None for it in items]
    bit = [0] * n
    nm = no = 0
    for i in range(n):
        if mand[i]:
            bit[i] = 1 << nm
            nm += 1
        else:
            bit[i] = 1 << no
            no += 1

    # What can make an optional write worth applying (see useless()): the
    # items whose result shows a value, by value; the unknown testandsets
    # and delversions, by the version they act on.
    outval = [_out(f, a) for f, a in zip(fs, argss)]
    obs = {}
    tas_u, dv_u = {}, {}
    optitem = [0] * no
    for i in range(n):
        if not mand[i]:
            optitem[bit[i].bit_length() - 1] = i
        if exps[i] is not None:
            if exps[i][1] is not None:
                o = obs.setdefault(exps[i][1], [0, 0])
                o[0 if mand[i] else 1] |= bit[i]
        elif fs[i] == TESTANDSET and outval[i] is not None:
            tas_u[argss[i][2]] = tas_u.get(argss[i][2], 0) | bit[i]
        elif fs[i] == DELVERSION:
            dv_u[argss[i][0]] = dv_u.get(argss[i][0], 0) | bit[i]
    ext_seen = {op.expected[1] for op in keep_for if op.outcome == OK}
    ext_v = {op.args[-1] for op in keep_for
             if op.outcome != FAIL and op.f in (TESTANDSET, DELVERSION)}
    keep = [v is not None and (v in ext_seen or v[0] in ext_v)
            for v in outval]

    def useless(i, cm, co, memo_chain):
        """Whether optional write i can be left out here; cm and co are the
        mandatory and optional candidates (invoked before the first return
        still to come), memo_chain a cache for chain().

        The argument of _blind, with only the candidates to see the
        value: no other operation can act before the first return to come
        is passed, which the key cannot pass while holding the value, as
        that return's own operation is a candidate and does not show it."""
        if keep[i]:
            return False
        o = obs.get(outval[i])
        if o is not None and (o[0] & cm or o[1] & co):
            return False
        return chain(outval[i][0], fs[i] == SET, cm, co, memo_chain, 0)

    def chain(v, from_set, cm, co, memo_chain, depth):
        """Whether every run of unknown candidates from a value of version
        v that nobody sees can be dropped: no candidate delversion of v
        unless the run began with a set, and every candidate testandset of
        v writes a value nobody sees either, and so on up the versions
        (depth bounds the recursion; past it, keep the write)."""
        key = (v, from_set)
        r = memo_chain.get(key)
        if r is None:
            r = depth < 50 and (from_set or not dv_u.get(v, 0) & co)
            t = tas_u.get(v, 0) & co if r else 0
            while t:
                low = t & -t
                t ^= low
                j = optitem[low.bit_length() - 1]
                o = obs.get(outval[j])
                if (keep[j] or (o is not None and (o[0] & cm or o[1] & co))
                        or not chain(v + 1, from_set, cm, co, memo_chain,
                                     depth + 1)):
                    r = False
                    break
            memo_chain[key] = r
        return r

    def children(state):
        """The (item, new state) moves worth trying from here, and the
        position of the first return still to come.

        Operations with a known result come first: the plain path seldom
        needs an unknown one, and once it is explored the memo cuts short
        the detours through unknown ones that come back to it."""
        cands = []
        node = nxt[0]
        while node and not node_ret[node]:
            cands.append(node_item[node])
            node = nxt[node]
        first_ret = node_pos[node] if node else INF
        known, unknown = [], []
        classes = set()
        dv_del = False
        masks = None
        memo_chain = {}

        def pointless(i):
            # An optional write useless here (the candidates' bitsets are
            # built only when a write needs them: most calls need none).
            nonlocal masks
            if outval[i] is None:
                return False
            if masks is None:
                cm = co = 0
                for j in cands:
                    if mand[j]:
                        cm |= bit[j]
                    else:
                        co |= bit[j]
                masks = (cm, co)
            return useless(i, masks[0], masks[1], memo_chain)

        for i in cands:
            exp = exps[i]
            if exp is None:
                # Unknown operations of one class are interchangeable, and
                # the earliest invoked can stand in for any other: try it.
                cls = clss[i]
                if cls in classes:
                    continue
                classes.add(cls)
                ns, res = step(state, fs[i], argss[i])
                if ns != state and not pointless(i):
                    unknown.append((i, ns))
                    if ns is None and fs[i] == DELVERSION:
                        dv_del = True
                continue
            ns, res = step(state, fs[i], argss[i])
            if res == exp:
                if ns != state:
                    if mand[i] or not pointless(i):
                        known.append((i, ns))
                elif mand[i]:
                    return [(i, ns)], first_ret     # forced (module docstring)
                # else an optional no-op: as pointless as an unknown one
        if dv_del:
            # An unknown delete and an unknown delversion of this version
            # both empty the key: use the delversion, and keep the delete,
            # which works on any version, for later.
            unknown = [mv for mv in unknown if fs[mv[0]] != DEL]
        return (known + unknown if unknown else known), first_ret

    def lift(i):
        for x in (call_node[i], ret_node[i]):
            if x:
                nxt[prv[x]] = nxt[x]
                prv[nxt[x]] = prv[x]

    def unlift(i):
        # Dancing links: restore in the reverse order of removal.
        for x in (ret_node[i], call_node[i]):
            if x:
                nxt[prv[x]] = x
                prv[nxt[x]] = x

    memo = {}
    found = {}
    furthest = -1

    def seen(key, ok, eff):
        """Record a configuration; True if an explored one dominates it:
        same key, no more optional items linearized, eff no later."""
        lst = memo.get(key)
        if lst is None:
            memo[key] = [(ok, eff)]
            return False
        for ok2, eff2 in lst:
            if (ok2 & ~ok) == 0 and eff2 <= eff:
                return True
        lst.append((ok, eff))
        return False

    for s0 in init_states:
        if seen((0, s0, NONE) if collect else (0, s0), 0, -1):
            continue
        state, prev, mk, ok, eff, left = s0, NONE, 0, 0, -1, nm
        moves, first_ret = children(state)
        furthest = max(furthest, first_ret)
        if collect:
            found.setdefault((state, prev), set()).add((eff, first_ret))
        elif left == 0:
            return True
        # Frames: [moves, next move, item that led here, and the state,
        # prev and eff before it].
        stack = [[moves, 0, -1, None, None, -1]]
        while stack:
            fr = stack[-1]
            moves = fr[0]
            while fr[1] < len(moves):
                i, ns = moves[fr[1]]
                fr[1] += 1
                if mand[i]:
                    nmk, nok = mk | bit[i], ok
                else:
                    nmk, nok = mk, ok | bit[i]
                nprev, neff = prev, eff
                if collect and ns != state:
                    nprev = state
                    neff = max(eff, calls[i])
                if seen((nmk, ns, nprev) if collect else (nmk, ns), nok,
                        neff):
                    continue
                lift(i)
                stack.append([None, 0, i, state, prev, eff])
                state, prev, mk, ok, eff = ns, nprev, nmk, nok, neff
                if mand[i]:
                    left -= 1
                    if left == 0 and not collect:
                        return True
                stack[-1][0], first_ret = children(state)
                if first_ret > furthest:
                    furthest = first_ret
                if collect:
                    found.setdefault((state, prev), set()).add(
                        (eff, first_ret))
                break
            else:
                # Every move from here failed: undo the one that led here.
                _, _, i, pstate, pprev, peff = stack.pop()
                if i >= 0:
                    unlift(i)
                    if mand[i]:
                        mk ^= bit[i]
                        left += 1
                    else:
                        ok ^= bit[i]
                    state, prev, eff = pstate, pprev, peff
    if reach is not None:
        reach.append(furthest)
    return found if collect else False


# --------------------------------------------------------------- per key

def _searchable(op):
    # An unknown get changes nothing and constrains nothing.
    return op.outcome != FAIL and not (op.unknown and op.f == GET)


def _blind(items):
    """The optional writes among items whose value no item can ever see.

    Every ok result on a present key carries its value, so no operation
    with a known result can act while the key holds a value none of them
    shows; only unknown ones can: a testandset of its version, to go on
    to another value, a delete or a delversion of its version.  Such a
    write can be dropped when every run of unknown operations from it
    either ends in a delete, or after a set in any removal: in a
    linearization that uses it, that run can be dropped (from a set, it
    goes from absent to absent), or replaced by its final delete (from a
    testandset: a delete also works on the value before; a delversion of
    a later version would not).  Versions only grow along testandset
    chains, so one pass from the highest version down settles whether a
    chain from a version can reach a value that is seen, or a delversion.
    """
    seen = {it.expected[1] for it in items if it.expected is not None}
    dv = {it.args[0] for it in items if it.f == DELVERSION}
    tas = {}
    for it in items:
        if it.f == TESTANDSET and it.args[2] != MAX_VERSION:
            tas.setdefault(it.args[2], []).append(it)
    to_seen, to_dv = {}, {}         # version: a chain from it can reach ...
    for v in sorted(tas, reverse=True):
        outs = [_out(t.f, t.args) for t in tas[v]]
        to_seen[v] = any(p in seen or to_seen.get(v + 1, False)
                         for p in outs)
        to_dv[v] = v + 1 in dv or to_dv.get(v + 1, False)

    def seeable(f, p):
        if p in seen or to_seen.get(p[0], False):
            return True
        return f == TESTANDSET and (p[0] in dv or to_dv.get(p[0], False))

    return {id(it) for it in items
            if it.ret_pos is None and _out(it.f, it.args) is not None and
            not seeable(it.f, _out(it.f, it.args))}


def _classify(ops):
    """Set op.cls, the class of interchangeable unknown operations.

    Unknown operations of one class lead to the same futures, so the
    search applies them in invocation order only: the earlier invoked can
    take the later's place in any linearization.  The class is the
    operation and its arguments, except for a write of a value that no ok
    result shows: as no operation with a known result can act while the
    key holds it (see _blind), and unknown ones see only its version, such
    writes are interchangeable with any other of the same kind and
    version."""
    seen = {op.expected[1] for op in ops if op.outcome == OK}
    for op in ops:
        v = _out(op.f, op.args)
        op.cls = (op.f, v[0]) if v is not None and v not in seen else (
            (op.f,) + op.args)


def _prefix_items(ops, k):
    """The history cut just after position k (None: the whole history)."""
    items = []
    for op in ops:
        if not _searchable(op) or (k is not None and op.call_pos > k):
            continue
        if op.outcome == OK and (k is None or op.ret_pos <= k):
            items.append(_Item(op, op.expected, op.ret_pos))
        else:
            items.append(_Item(op, None, None))
    blind = _blind(items)
    return [it for it in items if id(it) not in blind]


def _window_items(ops, s_pos, k, states):
    """The window from the operation invoked at s_pos to the cut at k,
    starting from states.  Operations that could not matter are left out,
    so that the report shows only what does: blind writes (_blind), and
    unknown testandsets and delversions of a version the key cannot
    reach."""
    items = []
    for op in ops:
        if not _searchable(op) or op.call_pos > k:
            continue
        done = op.outcome == OK and op.ret_pos <= k
        if op.call_pos >= s_pos:
            items.append(_Item(op, op.expected if done else None,
                               op.ret_pos if done else None))
        elif not (done and op.ret_pos < s_pos):
            # In flight at s: optional, as it may have taken effect before.
            items.append(_Item(op, op.expected if done else None, None))
    blind = _blind(items)
    items = [it for it in items if id(it) not in blind]
    versions = {st[0] for st in states if st is not None}
    versions.update(_out(it.f, it.args)[0] for it in items
                    if _out(it.f, it.args) is not None)
    return [it for it in items
            if not (it.expected is None and
                    it.f in (TESTANDSET, DELVERSION) and
                    it.args[-1] not in versions)]


class KeyResult:
    """The verdict on one key.

    When not linearizable: end is the operation that cannot be explained,
    start the one the window starts at (it may itself be left out of the
    window, as not mattering), window the failing window's operations in
    invocation order, roles
    maps an op's index to "end", "in-flight" (invoked before the window's
    start, optional) or "pending" (completes after the end: unknown),
    start_states the possible states at the window's start (None is
    absent), and failed the fail operations (left out of every search:
    they did not take effect) that overlap the window or wrote a value
    seen in it."""

    def __init__(self, key, ops):
        self.key = key
        self.ops = ops
        self.linearizable = True
        self.end = None
        self.start = None
        self.window = []
        self.roles = {}
        self.start_states = []
        self.failed = []


def _state_order(st):
    return (0,) if st is None else (1,) + st


def _check_key(key, ops):
    """Check one key's operations; explain a failure."""
    res = KeyResult(key, ops)
    # Positions: the time order of the searched entries (ties: call first).
    ents = []
    for op in ops:
        ents.append((op.invoke_time, 0, op.index, op))
        if op.outcome == OK:
            ents.append((op.complete_time, 1, op.index, op))
    ents.sort(key=lambda e: e[:3])
    for pos, (_, is_ret, _, op) in enumerate(ents):
        if is_ret:
            op.ret_pos = pos
        else:
            op.call_pos = pos
    _classify(ops)
    reach = []
    if _search(_prefix_items(ops, None), [None], reach=reach):
        return res
    res.linearizable = False

    # The end: bisect on the ok completions; the last one fails, as the
    # whole history does (what follows it is optional).  The search got
    # past every completion before reach[0], so the prefixes ending there
    # pass; and as it stopped at the one at reach[0], that one is the
    # likeliest end: try it first.
    rets = sorted(op.ret_pos for op in ops if op.outcome == OK)
    lo, hi = bisect.bisect_left(rets, reach[0]), len(rets) - 1
    if lo < hi and not _search(_prefix_items(ops, rets[lo]), [None]):
        hi = lo
    while lo < hi:
        mid = (lo + hi) // 2
        if _search(_prefix_items(ops, rets[mid]), [None]):
            lo = mid + 1
        else:
            hi = mid
    k = rets[lo]
    end = next(op for op in ops if op.ret_pos == k)

    # The states possible at each invocation up to the end's, and just
    # before the last change: from the operations invoked before the end,
    # with every result known by the end's completion.
    before = [it for it in _prefix_items(ops, k)
              if it.call_pos < end.call_pos]
    found = _search(before, [None], collect=True,
                    keep_for=[op for op in ops
                              if end.call_pos <= op.call_pos <= k])

    starts = sorted((op for op in ops
                     if _searchable(op) and op.call_pos <= end.call_pos),
                    key=lambda op: op.call_pos, reverse=True)
    for s in starts:
        c = s.call_pos
        states = set()
        for (st, prev), spans in found.items():
            if any(eff < c < r for eff, r in spans):
                states.add(st)
                if prev is not NONE:
                    states.add(prev)
        states = sorted(states, key=_state_order)
        items = _window_items(ops, c, k, states)
        if not _search(items, states):
            break
    else:
        raise AssertionError("no failing window on key %s" % key)

    res.end = end
    res.start = s
    res.start_states = states
    res.window = sorted((it.op for it in items), key=lambda op: op.call_pos)
    for it in items:
        op = it.op
        if op is end:
            res.roles[op.index] = "end"
        elif op.call_pos < c:
            res.roles[op.index] = "in-flight"
        elif op.outcome == OK and op.ret_pos > k:
            res.roles[op.index] = "pending"
    # Failed operations worth a look: those overlapping the window, and
    # earlier writes of a value the window's results carry (a "failed"
    # write that took effect is a classic).
    lo_t, hi_t = s.invoke_time, end.complete_time
    seen = {op.expected[1][1:] for op in res.window
            if op.outcome == OK and op.expected[1] is not None}
    res.failed = [op for op in ops if op.outcome == FAIL and
                  op.invoke_time <= hi_t and
                  (op.complete_time >= lo_t or
                   (op.f in (SET, TESTANDSET) and op.args[:2] in seen))]
    return res


class CheckResult:
    """The verdict on a history: linearizable, per-key results (keys, in
    key order; failures, the failing ones), counts, elapsed seconds and
    warnings.  t0 is the history's first time, for relative times."""

    def __init__(self):
        self.linearizable = True
        self.keys = []
        self.failures = []
        self.operations = self.ok = self.fail = self.unknown = 0
        self.elapsed = 0.0
        self.warnings = []
        self.t0 = 0


def _key_order(k):
    return (len(k.lstrip("-")), k)


def check_history(events, key=None, lines=None, warnings=()):
    """Check a history given as parsed JSON events, in file order.

    key: check only that key (any decimal form).  lines: the events' line
    numbers, for messages.  warnings: carried into the result.  Raises
    HistoryError on malformed input."""
    started = time.monotonic()
    ops, t0 = _pair(list(events), lines)
    res = CheckResult()
    res.t0 = t0
    res.warnings = list(warnings)
    if key is not None:
        want = _norm_key(key)
        if want is None:
            raise HistoryError("bad key %r" % (key,))
        ops = [op for op in ops if op.key == want]
        if not ops:
            raise HistoryError("key %s: no operations in the history" % want)
    by_key = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
    for k in sorted(by_key, key=_key_order):
        kr = _check_key(k, by_key[k])
        res.keys.append(kr)
        if not kr.linearizable:
            res.failures.append(kr)
    res.linearizable = not res.failures
    res.operations = len(ops)
    res.ok = sum(op.outcome == OK for op in ops)
    res.fail = sum(op.outcome == FAIL for op in ops)
    res.unknown = res.operations - res.ok - res.fail
    res.elapsed = time.monotonic() - started
    return res


# ---------------------------------------------------------------- output

def _fmt_value(v):
    if v is None:
        return "absent"
    return "(version=%d, timestamp=%d, data=%s)" % (v[0], v[1],
                                                   json.dumps(v[2]))


def _fmt_args(op):
    a = op.args
    if op.f == SET:
        return "timestamp=%d, data=%s" % (a[0], json.dumps(a[1]))
    if op.f == DELVERSION:
        return "version=%d" % a[0]
    if op.f == TESTANDSET:
        return "timestamp=%d, data=%s, version=%d" % (a[0], json.dumps(a[1]),
                                                      a[2])
    return ""


def _fmt_time(t, t0):
    return "-" if t is None else "+%.9f" % ((t - t0) / 1e9)


def _fmt_op(op, t0, role):
    if op.outcome == OK:
        st, v = op.expected
        out = "ok %s" % st + ("" if v is None else " " + _fmt_value(v))
    elif op.outcome == UNFINISHED:
        out = "unknown (never completed)"
    else:
        out = op.outcome + (" (unknown)" if op.outcome == INFO else "")
    note = {"end": "  <- cannot be explained",
            "in-flight": "  (in flight at the window's start: optional)",
            "pending": "  (completes after the end: unknown there)",
            "excluded": "  (failed: left out)"}.get(role, "")
    return "    %s .. %s  p%s  %s(%s) -> %s%s" % (
        _fmt_time(op.invoke_time, t0), _fmt_time(op.complete_time, t0),
        op.process, FNAMES[op.f], _fmt_args(op), out, note)


def format_text(res):
    """The human-readable report."""
    summary = ("%d key%s, %d operations (%d ok, %d fail, %d unknown), "
               "%.3f s" % (len(res.keys), "" if len(res.keys) == 1 else "s",
                           res.operations, res.ok, res.fail, res.unknown,
                           res.elapsed))
    if res.linearizable:
        return "linearizable: " + summary + "\n"
    out = ["NOT linearizable: %d failing key%s of %s" % (
        len(res.failures), "" if len(res.failures) == 1 else "s", summary)]
    for kr in res.failures:
        e = kr.end
        out.append("")
        out.append("key %s: p%s's %s completed at %s cannot be explained "
                   "(lines %s, %s)" % (kr.key, e.process, FNAMES[e.f],
                                       _fmt_time(e.complete_time, res.t0),
                                       e.invoke_line, e.complete_line))
        st = kr.start
        out.append("  smallest failing window: %d operation%s, from p%s's "
                   "%s invoked at %s (line %s)" % (
                       len(kr.window), "" if len(kr.window) == 1 else "s",
                       st.process, FNAMES[st.f],
                       _fmt_time(st.invoke_time, res.t0), st.invoke_line))
        out.append("  possible states at its start: " +
                   "; ".join(_fmt_value(s) for s in kr.start_states))
        for op in kr.window:
            out.append(_fmt_op(op, res.t0, kr.roles.get(op.index)))
        if kr.failed:
            out.append("  failed operations (left out, as they did not take "
                       "effect) overlapping it or writing a value it saw:")
            for op in kr.failed:
                out.append(_fmt_op(op, res.t0, None))
    return "\n".join(out) + "\n"


def _json_value(v):
    if v is None:
        return None
    return {"version": v[0], "timestamp": v[1], "data": v[2]}


def _json_op(op, t0, role=None):
    d = {"process": op.process, "f": FNAMES[op.f], "key": op.key,
         "arg": op.arg, "outcome": op.outcome,
         "invoke_time": op.invoke_time - t0,
         "complete_time": (None if op.complete_time is None
                           else op.complete_time - t0),
         "invoke_line": op.invoke_line, "complete_line": op.complete_line}
    if op.outcome == OK:
        d["result"] = {"status": op.expected[0],
                       "value": _json_value(op.expected[1])}
    if role is not None:
        d["role"] = role
    return d


def to_json(res):
    """The report as a JSON-able dict (times relative to the first)."""
    return {
        "linearizable": res.linearizable,
        "keys": len(res.keys),
        "operations": res.operations,
        "ok": res.ok, "fail": res.fail, "unknown": res.unknown,
        "seconds": round(res.elapsed, 6),
        "warnings": res.warnings,
        "failures": [{
            "key": kr.key,
            "end": _json_op(kr.end, res.t0),
            "start": _json_op(kr.start, res.t0),
            "start_states": [_json_value(s) for s in kr.start_states],
            "window": [_json_op(op, res.t0, kr.roles.get(op.index, "window"))
                       for op in kr.window],
            "failed": [_json_op(op, res.t0) for op in kr.failed],
        } for kr in res.failures],
    }


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Check a kvdb history (JSON lines) for linearizability.",
        epilog="Exit status: 0 linearizable, 1 not, 2 bad input.")
    ap.add_argument("history", help="the history file, JSON lines")
    ap.add_argument("--json", action="store_true",
                    help="print the report as one JSON object")
    ap.add_argument("--key", metavar="K", help="check only key K")
    opts = ap.parse_args(argv)
    try:
        events, lines, warnings = load_history(opts.history)
        for w in warnings:
            print("linearizability: warning: " + w, file=sys.stderr)
        res = check_history(events, key=opts.key, lines=lines,
                            warnings=warnings)
    except HistoryError as e:
        print("linearizability: %s" % e, file=sys.stderr)
        return 2
    if opts.json:
        print(json.dumps(to_json(res), indent=1))
    else:
        sys.stdout.write(format_text(res))
    return 0 if res.linearizable else 1


if __name__ == "__main__":
    sys.exit(main())
