"""Baseline servers the bench compares a chatwire/1 server with (``--compare``).

- :mod:`bench.baselines.naive`: the classic first chat server, thread per client.
- :mod:`bench.baselines.raw`: a relay that does no protocol work at all, the upper limit.

Both print ``listening on HOST:PORT`` when ready and exit 0 on SIGTERM, like the reference.
"""
