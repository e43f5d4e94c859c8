"""A lazy filesystem: a FUSE passthrough that forgets what was not fsynced when power is cut.

kvctl's kill fault is a SIGKILL, which loses nothing that reached the kernel's page cache, so a
store that acknowledges before it fsyncs looks correct under it. This package plays Jepsen's
LazyFS inside a node's container, over the node's data directory:

- `model`: the page cache, sans IO (what is durable, what a power cut undoes);
- `fs`: the pyfuse3 passthrough that drives the model;
- `server`: the filesystem process, FUSE and its control socket on one trio loop;
- `control`: talking to that process (status, crash, freeze) from another;
- `damage`: bit flips and cut tails for the corruption fault;
- `python3 -m kvctl.lazyfs mount|run|status|crash|corrupt`: what the harness runs.

Only `fs` and `server` need pyfuse3 (Debian's python3-pyfuse3, with fuse3). Files and
directories are supported; hard links, symbolic links and special files are not.
"""
