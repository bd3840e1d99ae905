"""Admin actions, recorded: who did what, when (never a secret value)."""
