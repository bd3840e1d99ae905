pytest_plugins = ["m365sim.testing"]
