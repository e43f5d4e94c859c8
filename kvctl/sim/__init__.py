"""Deterministic simulation: the real sans-IO node cores on a virtual clock, network and disk.

Every random choice (delays, loss, partitions, crashes, client operations) comes from one
`random.Random(seed)`, so a failing seed replays exactly: `kvctl sim --seed S`.
"""
