"""Fleet simulator: many real agents in one process, with simulated players, disks and faults."""

from firmware_sim.fleet_sim import FleetSimulation, SimulatedCluster

__all__ = ["FleetSimulation", "SimulatedCluster"]
