"""Snapshots carried by a sync (store-review B1): a replica that receives a decided snapshot
past its own decided index installs it, whatever its log holds, on both paths that carry one:
a follower's AcceptSync and a new leader's adoption of a Promise."""

from __future__ import annotations

from kvctl.node.messages import Snapshot

from .harness import PaxosNet

FIVE = ["a", "b", "c", "d", "e"]
GOOD_STATE = "state after x0, good1..good3"


def _bad_suffix_on_c_then_good_log_on_b() -> PaxosNet:
    """a decides x0, then bad1..bad5 reach only c (never chosen) and a crashes; b (ballot 2)
    decides good1..good3 without c and compacts them into a snapshot at index 4."""
    net = PaxosNet(FIVE)
    net.elect("a", 1)
    net.deliver()
    net.propose("a", ("x0",))
    net.deliver()
    net.propose("a", *[(f"bad{i}",) for i in range(1, 6)])
    net.deliver(drop=lambda src, dst, msg: src == "a" and dst != "c")
    net.crash("a")

    def cut_c(src: str, dst: str, msg: object) -> bool:
        return "c" in (src, dst)

    net.elect("b", 2)
    net.deliver(drop=cut_c)
    net.propose("b", ("good1",), ("good2",), ("good3",))
    net.settle(drop=cut_c)
    assert net.decided["b"] == [("x0",), ("good1",), ("good2",), ("good3",)]
    return net


def _applied(net: PaxosNet, name: str) -> list[object]:
    return [e for e in net.decided[name] if e[0] != "snapshot"]


def test_a_follower_installs_a_snapshot_even_when_its_log_reaches_past_it():
    net = _bad_suffix_on_c_then_good_log_on_b()
    net.nodes["b"].compact(Snapshot(4, GOOD_STATE))
    net.deliver(drop=lambda src, dst, msg: "c" in (src, dst))
    net.tick(25)  # b's resend timer re-prepares c, which now hears it
    net.deliver()
    net.propose("b", ("good4",))
    net.settle()
    assert not any(str(e[0]).startswith("bad") for e in net.decided["c"]), net.decided["c"]
    assert ("snapshot", 4) in net.decided["c"]
    assert net.disk["c"].snapshot == Snapshot(4, GOOD_STATE)
    assert net.nodes["c"].log == [("good4",)]
    assert _applied(net, "c")[-1] == ("good4",)


def test_a_new_leader_installs_a_snapshot_it_adopts_from_a_promise():
    net = _bad_suffix_on_c_then_good_log_on_b()
    for name in ("d", "e"):
        net.nodes[name].compact(Snapshot(4, GOOD_STATE))
    net.deliver(drop=lambda src, dst, msg: "c" in (src, dst))
    net.crash("b")
    net.elect("c", 3)
    net.deliver()
    net.propose("c", ("new",))
    net.settle()
    for name in ("c", "d", "e"):
        assert not any(str(e[0]).startswith("bad") for e in net.decided[name]), name
    assert net.nodes["c"].snapshot == Snapshot(4, GOOD_STATE)
    assert net.nodes["c"].log == [("new",)]
    assert net.decided["d"][-1] == ("new",)
