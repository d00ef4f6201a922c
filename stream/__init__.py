"""Streaming plumbing shared by every service: Kafka settings and clients, the embedded
broker, the service launcher and the ``/metrics`` + ``/healthz`` server.

The contracts live in :mod:`stream.contracts`; the scorer service in
:mod:`stream.scorer`; the archive, replays and history reading in
:mod:`stream.history`.
"""
