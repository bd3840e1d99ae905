"""m365sim: a local Microsoft 365 tenant (Entra ID, Microsoft Graph, an EWS subset).

Faithful enough that Microsoft's own client libraries (MSAL, msgraph-sdk, python-o365,
exchangelib) work against it unmodified. It never imports m365sync.
"""

from m365sim.seed import DEMO_SEED, load_seed, read_seed
from m365sim.server import SimServer
from m365sim.state import SimConfig, SimState

__all__ = ["DEMO_SEED", "SimConfig", "SimServer", "SimState", "load_seed", "read_seed"]
