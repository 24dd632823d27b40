"""The `sim` driver: a virtual telephone network on a virtual clock."""

from legato.sim.network import SimNetwork
from legato.sim.phones import PhoneBehaviour

__all__ = ["PhoneBehaviour", "SimNetwork"]
