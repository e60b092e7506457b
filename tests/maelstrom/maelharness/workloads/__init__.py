"""Workload registry: -w name -> Workload subclass.  See base.py."""

from .broadcast import Broadcast
from .counter import GCounter, PNCounter
from .echo import Echo
from .kafka import Kafka
from .txn_rw_register import TxnRwRegister
from .unique_ids import UniqueIds

WORKLOADS = {w.name: w for w in (Echo, UniqueIds, Broadcast, GCounter,
                                 PNCounter, Kafka, TxnRwRegister)}
