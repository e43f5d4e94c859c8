"""The error registry: what each code means, that the node sends it, and that the client
decides ok / fail / info from the code alone."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kvctl.client import Client, Failed, Indeterminate
from kvctl.node import errors
from kvctl.node.core import FAIL, MAX_HOPS, MAX_VALUE_BYTES, NODE_LEVEL, UNKNOWN, NodeCore
from kvctl.node.errors import ErrorCode
from kvctl.node.messages import ClientForward, ClientForwardReply
from kvctl.node.placement import Placement
from kvctl.node.wire import CLIENT_FRAME_LIMIT, FrameDecoder, frame
from kvctl.sim.world import World

ADMIN = 1


# -- the table ----------------------------------------------------------------------------------


def test_codes_and_names_are_unique_and_looked_up_by_code():
    entries = list(errors.REGISTRY.values())
    assert len({e.name for e in entries}) == len(entries)
    for entry in entries:
        assert errors.lookup(entry.code) is entry
        assert entry.meaning


@pytest.mark.parametrize("garbled", [4242, -1, "timeout", None, True, 1.5])
def test_a_code_outside_the_table_counts_as_maybe_happened(garbled):
    assert errors.lookup(garbled) is errors.UNKNOWN_CODE
    assert not errors.UNKNOWN_CODE.definite


def test_an_error_that_says_the_op_may_have_happened_is_never_definite():
    maybe = {errors.TIMEOUT, errors.CRASH, errors.LEADER_CHANGED, errors.UNKNOWN_CODE}
    assert {e for e in errors.REGISTRY.values() if not e.definite} == maybe


# -- the node sends a code, and its status follows the code's definite flag --------------------


def lone_core(name: str = "n1") -> NodeCore:
    return NodeCore(name, Placement(("n1", "n2", "n3"), groups=1, replication=3))


def answer(core: NodeCore, request: tuple[Any, ...]) -> tuple[Any, ...]:
    core.client_request(ADMIN, request)
    responses = core.take_ready().responses
    assert len(responses) == 1
    return responses[0][1]


def assert_error(response: tuple[Any, ...], expected: ErrorCode) -> None:
    _, status, (code, text), _ = response
    assert code == expected.code, text
    assert status == (FAIL if expected.definite else UNKNOWN)


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (("no id",), errors.MALFORMED_REQUEST),
        ((1, "w", "k"), errors.MALFORMED_REQUEST),
        ((1, "w", ["a list"], "v", None, ADMIN, 1), errors.MALFORMED_REQUEST),
        ((1, "w", "k", {"a": "map"}, None, ADMIN, 1), errors.MALFORMED_REQUEST),
        ((1, "w", "k", "v", None, "cid", 1), errors.MALFORMED_REQUEST),
        ((1, "reconfigure", 7, ("n1",), (("n1", "h:1"),), ADMIN, 1), errors.MALFORMED_REQUEST),
        ((1, "reconfigure", 0, ("n1", "n1"), (("n1", "h:1"),), ADMIN, 1), errors.MALFORMED_REQUEST),
        ((1, "delete", "k", None, None, ADMIN, 1), errors.NOT_SUPPORTED),
        ((1, "w", "k" * 2000, "v", None, ADMIN, 1), errors.TOO_LARGE),
        ((1, "w", "k", "v" * (MAX_VALUE_BYTES + 1), None, ADMIN, 1), errors.TOO_LARGE),
    ],
)
def test_a_refused_request_carries_its_code(request_, expected):
    assert_error(answer(lone_core(), request_), expected)


def test_a_forward_that_used_its_hops_without_finding_a_leader_is_unavailable():
    core = lone_core()  # no leader elected yet
    request = (1, "w", "k", "v", None, ADMIN, 1)
    core.peer_message("n2", NODE_LEVEL, ClientForward(7, request, MAX_HOPS))
    replies = [m for _, _, m in core.take_ready().messages if isinstance(m, ClientForwardReply)]
    assert [r.forward_id for r in replies] == [7]
    assert_error((7, *replies[0].response), errors.TEMPORARILY_UNAVAILABLE)


def test_a_forward_nobody_answers_times_out():
    core = NodeCore("n4", Placement(("n1", "n2", "n3", "n4"), groups=1, replication=3))
    assert core.current(0) is None  # not a member: it forwards to the group
    core.client_request(ADMIN, (1, "w", "k", "v", None, ADMIN, 1))
    responses = []
    for _ in range(core.request_timeout_ticks + 100):
        core.tick()
        responses += core.take_ready().responses
    assert len(responses) == 1
    assert_error(responses[0][1], errors.TIMEOUT)


def settled_world() -> tuple[World, str]:
    world = World(5, ["n1", "n2", "n3", "n4"], groups=1, replication=3)
    world.run_until(1000)
    leader = next(n for n, node in world.nodes.items() if node.core and node.core.current(0)
                  and node.core.current(0).accepting)
    return world, leader


def test_a_leader_that_steps_down_says_the_write_may_have_happened():
    world, leader = settled_world()
    got: list[tuple[Any, ...]] = []
    world.client_inbox = lambda _node, _client, response: got.append(response)
    for other in world.nodes:
        world.net.blocked |= {(leader, other), (other, leader)}
    world.request(ADMIN, leader, (1, "w", "k", "v", None, ADMIN, 1))
    world.run_until(world.now + 100)
    world.net.blocked.clear()  # it meets the new leader's higher ballot
    world.run_until(world.now + 3000)
    assert len(got) == 1
    assert_error(got[0], errors.LEADER_CHANGED)


def test_a_second_reconfiguration_is_refused_while_the_first_runs():
    world, leader = settled_world()
    core = world.nodes[leader].core
    assert core is not None
    members = ("n1", "n2", "n4")
    pairs = tuple((m, m) for m in members)
    core.client_request(ADMIN, (1, "reconfigure", 0, members, pairs, ADMIN, 1))
    assert_error(
        answer(core, (2, "reconfigure", 0, members, pairs, ADMIN, 2)),
        errors.RECONFIGURATION_IN_PROGRESS,
    )


# -- the client: outcome from the code ----------------------------------------------------------

Reply = Callable[[tuple[Any, ...]], tuple[Any, ...] | None]  # None: never answer


def erring(code: int, text: str = "scripted") -> Reply:
    return lambda request: (request[0], "fail", (code, text), "n1")


def ok(value: Any) -> Reply:
    return lambda request: (request[0], "ok", value, "n1")


def silent(request: tuple[Any, ...]) -> None:
    return None


class ScriptedNode:
    """A one-node 'cluster' that answers the i-th attempt with script[i] (the last repeats)."""

    def __init__(self, script: list[Reply]) -> None:
        self.script = script
        self.attempts = 0

    def reply(self, request: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if request[1] == "topology":
            topology = {"nodes": ["n1"], "groups": 1, "replication": 1, "leaders": {0: "n1"}}
            return (request[0], "ok", topology, "n1")
        self.attempts += 1
        return self.script[min(self.attempts, len(self.script)) - 1](request)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = FrameDecoder(CLIENT_FRAME_LIMIT)
        while data := await reader.read(65536):
            for batch in decoder.feed(data):
                answers = [a for a in map(self.reply, batch[1:] if batch == ("client",) else batch)
                           if a is not None]
                if answers:
                    writer.write(frame(answers))
        writer.close()


def outcome(script: list[Reply], action: Callable[[Client], Any]) -> tuple[Any, int]:
    """(the value or the exception the client ends with, how many attempts it made)."""
    node = ScriptedNode(script)

    async def main() -> Any:
        server = await asyncio.start_server(node.serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, Client({"n1": f"127.0.0.1:{port}"}, timeout=1.5,
                                  attempt_timeout=1.0) as client:
            try:
                return await action(client)
            except (Failed, Indeterminate) as exc:
                return exc

    return asyncio.run(main()), node.attempts


def write(client: Client) -> Any:
    return client.write("k", "v")


def reconfigure(client: Client) -> Any:
    return client.reconfigure(0, ["n1"], {"n1": "h:1"})


@pytest.fixture(params=sorted(errors.REGISTRY), ids=lambda c: errors.REGISTRY[c].name)
def code(request: pytest.FixtureRequest) -> Iterator[ErrorCode]:
    yield errors.REGISTRY[request.param]


def test_every_code_alone_decides_fail_or_info(code):
    got, attempts = outcome([erring(code.code)], write)
    assert type(got) is (Failed if code.definite else Indeterminate)
    assert got.code is code
    assert (attempts > 1) == code.retryable


@pytest.mark.parametrize(
    "code", [c for c in errors.REGISTRY.values() if c.retryable], ids=lambda c: c.name
)
def test_a_retryable_error_then_ok_is_ok(code):
    got, attempts = outcome([erring(code.code), ok(None)], write)
    assert got is None and attempts == 2


def test_the_text_does_not_matter():
    got, _ = outcome([erring(errors.MALFORMED_REQUEST.code, "unavailable: looks retryable")], write)
    assert isinstance(got, Failed)
    got, _ = outcome([erring(errors.TEMPORARILY_UNAVAILABLE.code, "bad"), ok(None)], write)
    assert got is None


def test_an_unreadable_error_is_indeterminate():
    got, _ = outcome([lambda request: (request[0], "fail", "no code at all", "n1")], write)
    assert isinstance(got, Indeterminate)


def test_a_retried_reconfiguration_refused_as_in_progress_is_indeterminate():
    """B12: the first attempt's answer was lost, so its StopSign may be the one in progress."""
    in_progress = errors.RECONFIGURATION_IN_PROGRESS.code
    got, attempts = outcome([silent, erring(in_progress)], reconfigure)
    assert attempts == 2
    assert isinstance(got, Indeterminate)


def test_a_refusal_on_the_first_attempt_is_a_failure():
    got, _ = outcome([erring(errors.RECONFIGURATION_IN_PROGRESS.code)], reconfigure)
    assert isinstance(got, Failed)


def test_a_later_ok_settles_a_lost_attempt():
    got, attempts = outcome([silent, ok(None)], write)
    assert got is None and attempts == 2
