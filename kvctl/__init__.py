"""kvctl: a linearizable, sharded Sequence Paxos key-value store and a Jepsen-style tester."""

__version__ = "0.1.0"
