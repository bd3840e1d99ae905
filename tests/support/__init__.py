"""What the tests share, in one place: the package ``support``.

pyproject.toml puts ``tests/`` on the import path (``[tool.pytest.ini_options] pythonpath``),
so every test imports it the same way: ``from support.demo import SERVICE_APP_ID``. Nothing
else is shared between test folders (tests/m365sync/test_layout.py checks it).

- ``demo``: the demo world, named once: m365sim's demo tenant (Contoso) with its apps and
  secrets, Woodgrove (a second customer), sfsim's demo org, and ``demo_settings``.
- ``polling``: ``wait_for``, for what another thread, process or server does.
- ``imports``: ``loaded_modules``, what a fresh interpreter imported (start-up budgets).
- ``postgres``: where the tests find PostgreSQL.
- ``organizations``: ``fresh``, an organization read again in the session at hand.
- ``connections``: ``add_service_account``, the demo tenant's service account saved.
- ``crm``: the embedded CRM store with the reads only tests need.
- ``sync_world``: the sync harness (``SyncWorld``), an organization synced from m365sim.
- ``scheduling_world``: an organization booking meetings against m365sim, its fixtures.
- ``salesforce_world`` / ``salesforce_target_world``: sfsim's demo org as m365sync meets it,
  and the synced organization with Salesforce as its CRM.
- ``sim_tokens``: Graph tokens, HTTP clients and control calls for m365sim.
- ``entra_client``: m365sim's sign-in pages driven like a browser, MSAL apps, certificates.
- ``microsoft_sign_in``: "Connect your Office 365" followed through m365sim's pages.
- ``ews_clients``, ``webhook_receiver``, ``sf_clients``: the EWS, notification and sfsim
  tests' clients.
"""
