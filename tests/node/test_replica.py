"""A replica tells its host, once per change, who leads and whether a majority answers it:
what the node logs, so that a stalled group can be read from its nodes' logs."""

from __future__ import annotations

from collections.abc import Callable

from kvctl.node.replica import Election, Replica, Timing

THREE = ["a", "b", "c"]


def _run(
    replicas: dict[str, Replica], ticks: int, hears: Callable[[str, str], bool]
) -> dict[str, list[Election]]:
    """Tick every replica `ticks` times, delivering what `hears(src, dst)` lets through;
    each replica's reported elections, in order."""
    seen: dict[str, list[Election]] = {name: [] for name in replicas}
    for _ in range(ticks):
        for replica in replicas.values():
            replica.tick()
        busy = True
        while busy:
            busy = False
            for name, replica in replicas.items():
                ready = replica.take_ready()
                if ready.election is not None:
                    seen[name].append(ready.election)
                for dst, msg in ready.messages:
                    if hears(name, dst):
                        replicas[dst].handle(name, msg)
                        busy = True
    return seen


def test_each_election_and_each_loss_of_the_majority_is_reported_once() -> None:
    timing = Timing(heartbeat_ticks=2)
    replicas = {m: Replica(m, THREE, priority=3 - THREE.index(m), timing=timing) for m in THREE}
    elected = _run(replicas, 10, lambda src, dst: True)
    for name in THREE:
        leaders = [e.leader.pid for e in elected[name] if e.leader is not None]
        assert leaders == ["a"] and all(e.connected for e in elected[name])

    cut = _run(replicas, 10, lambda src, dst: "c" not in (src, dst))
    assert cut["c"] == [Election(replicas["c"].ble.leader, False)]
    assert cut["a"] == [] and cut["b"] == []  # a still leads them: nothing changed

    healed = _run(replicas, 10, lambda src, dst: True)
    assert [e.connected for e in healed["c"]] == [True]


def test_a_leader_whose_paxos_promised_a_higher_ballot_outbids_it_after_the_rival_is_gone() -> None:
    # Found by `kvctl sim --seed 22125 --leaders pack`: during a partial partition another
    # member won a higher ballot in Paxos without BLE's electing it everywhere, then lost
    # power before that ballot was on its disk. BLE still elects the old leader, whose Paxos
    # promised the higher ballot and so cannot lead with its own: unless it outbids that
    # promise, no member ever leads again.
    timing = Timing(heartbeat_ticks=2)
    replicas = {m: Replica(m, THREE, priority=3 - THREE.index(m), timing=timing) for m in THREE}
    _run(replicas, 10, lambda src, dst: True)
    assert replicas["a"].accepting
    before = replicas["b"].durable_state()
    rival = replicas["b"].ble.ballot
    assert replicas["b"].paxos.become_leader(type(rival)(rival.n + 1, rival.priority, "b"))
    _run(replicas, 1, lambda src, dst: "c" not in (src, dst))  # b's Prepare reaches a only
    assert not replicas["a"].accepting  # a promised b's ballot and stepped down
    replicas["b"] = Replica("b", THREE, before, priority=2, timing=timing)  # b lost power
    _run(replicas, 20, lambda src, dst: True)
    assert [m for m, r in replicas.items() if r.accepting] == ["a"]
