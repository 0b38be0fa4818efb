"""Simulators: plausible readings for the three families, published over MQTT per CONTRACT §1."""

from simulators.fleet import FleetSimulator, run_simulator
from simulators.incidents import DEMO_INCIDENTS, Incident

__all__ = ["DEMO_INCIDENTS", "FleetSimulator", "Incident", "run_simulator"]
