"""Partition shapes, as Jepsen's partition nemesis picks them (section 4).

A grudge maps each node to the set of nodes whose messages it drops.
Only n* nodes take part; clients and services are never cut off.
"""


def complete_grudge(components):
    """Each node drops messages from every node outside its component."""
    everyone = set().union(*map(set, components)) if components else set()
    grudge = {}
    for comp in components:
        others = everyone - set(comp)
        for n in comp:
            grudge[n] = set(others)
    return grudge


def one(nodes, rng):
    """One random node isolated from the rest."""
    if len(nodes) < 2:
        return {}
    n = rng.choice(nodes)
    return complete_grudge([[n], [m for m in nodes if m != n]])


def minority_third(nodes, rng):
    """A random third of the nodes (at least one) cut off from the rest."""
    if len(nodes) < 2:
        return {}
    s = list(nodes)
    rng.shuffle(s)
    k = max(1, len(s) // 3)
    return complete_grudge([s[:k], s[k:]])


def majority(nodes, rng):
    """Random split into a majority and a minority (Jepsen's bisect)."""
    if len(nodes) < 2:
        return {}
    s = list(nodes)
    rng.shuffle(s)
    k = (len(s) + 1) // 2
    return complete_grudge([s[:k], s[k:]])


def majorities_ring(nodes, rng):
    """Every node sees a majority, and no two nodes see the same one.

    Shuffle the nodes into a ring; for each window of m = n/2+1 consecutive
    nodes, the window's middle node sees exactly that window.  The grudge
    can be asymmetric (with 3 nodes a sees b while b does not see a).
    """
    n = len(nodes)
    if n < 2:
        return {}
    s = list(nodes)
    rng.shuffle(s)
    m = n // 2 + 1
    everyone = set(s)
    grudge = {}
    for i in range(n):
        window = [s[(i + j) % n] for j in range(m)]
        grudge[window[m // 2]] = everyone - set(window)
    return grudge


SHAPES = {
    "one": one,
    "minority-third": minority_third,
    "majority": majority,
    "majorities-ring": majorities_ring,
}


def random_partition(nodes, rng):
    """Pick a shape at random; return (shape name, grudge)."""
    name = rng.choice(sorted(SHAPES))
    return name, SHAPES[name](nodes, rng)


def describe(grudge):
    """JSON-friendly grudge: {node: sorted list of nodes it drops}."""
    return {n: sorted(s) for n, s in sorted(grudge.items()) if s}
