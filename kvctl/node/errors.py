"""Every error a store can answer with, as data: a code, a name, and what it says about the op.

Like Maelstrom's error registry, a client decides an operation's outcome from the code alone,
never from the message text:

- `definite`: the operation certainly did not happen (nobody proposed it, or it was refused
  before taking effect). An indefinite error (a timeout, a leader change after proposing) says
  the operation may or may not have happened.
- `retryable`: sending the same request again (same client id and seq, which the store applies
  at most once) may succeed.

An outcome is "fail" only if every attempt that may have reached the store was answered with a
definite error; one lost or indefinite attempt makes it "info" unless a later attempt returns
ok. Codes below 1000 are Maelstrom's standard codes with the same meaning; 1000 and up are
kvctl's own. Clients of other stores (etcd, Redis, ...) classify their errors into this table
too, so every client in a test reports outcomes the same way.

This module imports nothing: the node uses it without any of the harness.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorCode:
    code: int
    name: str
    definite: bool
    retryable: bool
    meaning: str


# -- Maelstrom's standard codes ------------------------------------------------------------------
TIMEOUT = ErrorCode(
    0, "timeout", definite=False, retryable=True,
    meaning="no decision in time: the operation may still take effect",
)
NODE_NOT_FOUND = ErrorCode(
    1, "node-not-found", definite=True, retryable=False,
    meaning="the request named a node the store does not know",
)
NOT_SUPPORTED = ErrorCode(
    10, "not-supported", definite=True, retryable=False,
    meaning="the store has no such operation",
)
TEMPORARILY_UNAVAILABLE = ErrorCode(
    11, "temporarily-unavailable", definite=True, retryable=True,
    meaning="not proposed: no leader could be reached from here right now",
)
MALFORMED_REQUEST = ErrorCode(
    12, "malformed-request", definite=True, retryable=False,
    meaning="the request's shape or types are wrong: it never will be served",
)
CRASH = ErrorCode(
    13, "crash", definite=False, retryable=True,
    meaning="the server failed while handling the request: it may have taken effect",
)
ABORT = ErrorCode(
    14, "abort", definite=True, retryable=True,
    meaning="the store aborted the operation before it took effect",
)
KEY_DOES_NOT_EXIST = ErrorCode(
    20, "key-does-not-exist", definite=True, retryable=False,
    meaning="the operation needs a key that is absent",
)
KEY_ALREADY_EXISTS = ErrorCode(
    21, "key-already-exists", definite=True, retryable=False,
    meaning="the operation needs a key to be absent, and it is present",
)
PRECONDITION_FAILED = ErrorCode(
    22, "precondition-failed", definite=True, retryable=False,
    meaning="a compare-and-set found another value: nothing was written",
)
TXN_CONFLICT = ErrorCode(
    30, "txn-conflict", definite=True, retryable=True,
    meaning="a transaction lost to a concurrent one and was rolled back",
)

# -- kvctl's own ---------------------------------------------------------------------------------
LEADER_CHANGED = ErrorCode(
    1000, "leader-changed", definite=False, retryable=True,
    meaning="proposed, then the leader stepped down: it may or may not be chosen",
)
RECONFIGURATION_IN_PROGRESS = ErrorCode(
    1001, "reconfiguration-in-progress", definite=True, retryable=False,
    meaning="not proposed: the group is already moving to another configuration",
)
TOO_LARGE = ErrorCode(
    1002, "too-large", definite=True, retryable=False,
    meaning="a key or value exceeds the store's size limit",
)
UNKNOWN_CODE = ErrorCode(
    1003, "unknown-code", definite=False, retryable=False,
    meaning="a code this table does not hold: assume the worst, it may have happened",
)

REGISTRY: dict[int, ErrorCode] = {
    e.code: e
    for e in (
        TIMEOUT, NODE_NOT_FOUND, NOT_SUPPORTED, TEMPORARILY_UNAVAILABLE, MALFORMED_REQUEST,
        CRASH, ABORT, KEY_DOES_NOT_EXIST, KEY_ALREADY_EXISTS, PRECONDITION_FAILED, TXN_CONFLICT,
        LEADER_CHANGED, RECONFIGURATION_IN_PROGRESS, TOO_LARGE, UNKNOWN_CODE,
    )
}


def lookup(code: object) -> ErrorCode:
    """The registry's entry for `code`; an unknown or garbled code counts as indefinite."""
    if isinstance(code, int) and not isinstance(code, bool):
        return REGISTRY.get(code, UNKNOWN_CODE)
    return UNKNOWN_CODE
