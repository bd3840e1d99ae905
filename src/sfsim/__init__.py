"""sfsim: a local Salesforce org (OAuth, REST, SOQL, composite, limits).

Faithful enough that the unmodified ``simple-salesforce`` client works against it. It
never imports m365sync.
"""

from sfsim.seed import DEMO_SEED, SeedError, load_seed, read_seed
from sfsim.server import SfServer
from sfsim.state import SfConfig, SfState

__all__ = ["DEMO_SEED", "SeedError", "SfConfig", "SfServer", "SfState", "load_seed", "read_seed"]
