"""Workload registry: -w name -> Workload subclass.  See base.py."""

from .echo import Echo
from .unique_ids import UniqueIds

WORKLOADS = {w.name: w for w in (Echo, UniqueIds)}
