"""Liaowang's shared base: the domain types, configuration and its specs, MQTT helpers and wording.

Everything else imports this package; it imports none of them. ``ingest``, ``rules``, ``alerting``
and ``earlywarning`` build on it, and ``liaowang`` (the composition root: CLI, wiring, HTTP API,
the roles ``run``, ``worker`` and ``api``) builds on all of them. ``tests/test_layers.py`` checks
the direction.
"""
