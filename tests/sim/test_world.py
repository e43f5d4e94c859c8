"""The simulated disk and network: what a crash, a power cut or a torn write leaves, when
messages that vouch for a write leave, and what the world counts."""

from __future__ import annotations

from kvctl.node.storage import decode_log
from kvctl.sim.world import DiskConditions, SimNode, World

ADMIN = 1


def slow_follower_after_a_write(both: bool = False) -> tuple[World, SimNode, str]:
    """One group of three; a follower (or `both`) whose fsync takes 100 ms has just written
    an entry that it has not fsynced yet. Returns the world, that follower and the leader."""
    world = World(5, ["n1", "n2", "n3"], groups=1, replication=3)
    world.run_until(1000)
    leader = next(name for name, node in world.nodes.items() if node.leads_a_group)
    followers = [world.nodes[name] for name in world.nodes_all if name != leader]
    for node in followers[: 2 if both else 1]:
        node.disk = DiskConditions(100, 100)
    follower = followers[0]
    world.request(ADMIN, leader, (1, "w", "k", "v", None, ADMIN, 1))
    world.run_until(world.now + 30)
    return world, follower, leader


def log_len(data: bytes) -> int:
    states, _ = decode_log(data)
    return states[(0, 0)].log_len


def on_disk(node: SimNode) -> bytes:
    return bytes(node.durable + node.cache)


def test_a_write_waits_in_the_page_cache_and_so_does_its_acknowledgement():
    world, follower, leader = slow_follower_after_a_write(both=True)
    assert follower.fsync_pending
    written = log_len(on_disk(follower))
    assert written > log_len(bytes(follower.durable))
    replica = world.nodes[leader].core.replicas[(0, 0)]
    assert replica.durable_state().decided_idx < written, "decided before a follower's fsync"
    world.run_until(world.now + 100)
    assert replica.durable_state().decided_idx == written


def test_a_process_crash_keeps_the_page_cache():
    _, follower, _ = slow_follower_after_a_write()
    written = log_len(on_disk(follower))
    follower.crash()
    follower.start()
    assert log_len(on_disk(follower)) == written
    follower.power_cut()  # the restart took the page cache as written through
    assert log_len(on_disk(follower)) == written


def test_a_power_cut_loses_what_was_not_fsynced():
    _, follower, _ = slow_follower_after_a_write()
    synced = bytes(follower.durable)
    follower.power_cut()
    assert on_disk(follower) == synced
    follower.start()
    assert follower.up


def test_a_torn_write_keeps_a_prefix_and_recovery_cuts_the_torn_record():
    world, follower, _ = slow_follower_after_a_write()
    before, unsynced = bytes(follower.durable), bytes(follower.cache)
    while world.counts.torn_writes == 0:  # the prefix is drawn: draw until one is strict
        follower.durable, follower.cache = bytearray(before), bytearray(unsynced)
        follower.power_cut(torn=True)
    assert follower.durable.startswith(before) and len(follower.durable) < len(before + unsynced)
    assert unsynced.startswith(bytes(follower.durable[len(before) :]))
    follower.start()
    _, intact = decode_log(on_disk(follower))
    assert intact == len(on_disk(follower))


def test_a_message_that_outlives_a_restart_is_counted():
    world, _, leader = slow_follower_after_a_write()
    world.net.long_tail = 1.0
    world.run_until(world.now + 50)  # messages now in flight for 100-1500 ms
    world.nodes[leader].crash()
    world.nodes[leader].start()
    world.run_until(world.now + 1600)
    assert world.counts.long_delays > 0 and world.counts.stale_deliveries > 0
