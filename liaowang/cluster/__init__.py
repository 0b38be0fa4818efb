"""The scaled-out deployment's NATS side: server configuration (natsconf) and stream provisioning (streams)."""
