"""The cluster roles' coordination: NATS configuration and streams, and leases with a fencing epoch."""
