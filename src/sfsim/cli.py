"""``sfsim serve``: run the local Salesforce org in the foreground."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sfsim.seed import DEMO_SEED, SeedError, load_seed, read_seed
from sfsim.server import SfServer
from sfsim.state import SfConfig


def describe(server: SfServer) -> str:
    state = server.state
    used, maximum = state.api_usage()
    lines = [
        f"sfsim is listening on {server.url}",
        f"  org {state.org.name}: id {state.org.id}, My Domain {state.org.my_domain_host}"
        + (f", sandbox {state.org.sandbox}" if state.org.sandbox else ""),
        f"  login URL / instance URL: {server.url}",
        f"  token endpoint:     {server.token_url}",
        f"  REST API:           {server.url}/services/data/",
        f"  daily API requests: {used}/{maximum}",
        f"  CA bundle (trust):  {server.tls.ca_bundle}",
        f"  latency:            {state.config.latency_ms} ms ± {state.config.latency_jitter_ms} ms",
    ]
    for app in state.auth.apps.values():
        lines.append(f"  connected app {app.name!r}: consumer key {app.consumer_key}")
        lines.append(f"    consumer secret {app.consumer_secret}")
        if app.client_credentials_user:
            lines.append(f"    client credentials run as {app.client_credentials_user}")
    for user in state.records.live("User"):
        password = state.auth.passwords.get(user["Id"])
        status = "" if user["IsActive"] else " (inactive)"
        lines.append(
            f"  user {user['Username']}{status}" + (f" / password {password}" if password else "")
        )
    lines.append(
        "Trust it with: export SSL_CERT_FILE=... REQUESTS_CA_BUNDLE=... (the CA bundle above)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sfsim", description="A local Salesforce org.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve OAuth, the REST API and /_sim over HTTPS")
    serve.add_argument(
        "--seed", type=Path, default=DEMO_SEED, help="seed file (YAML/JSON); default: the demo org"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8444)
    serve.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".sfsim"),
        help="where the CA and bundle are kept (m365sim's data dir shares its CA)",
    )
    serve.add_argument(
        "--latency-ms",
        type=int,
        default=150,
        help="typical time Salesforce takes to answer (0: none)",
    )
    serve.add_argument("--latency-jitter-ms", type=int, default=60)
    serve.add_argument("--latency-seed", type=int, default=0)
    args = parser.parse_args(argv)

    config = SfConfig(
        latency_ms=max(0, args.latency_ms),
        latency_jitter_ms=max(0, args.latency_jitter_ms),
        latency_seed=args.latency_seed,
    )
    from sfsim.state import SfState

    server = SfServer(SfState(config), host=args.host, port=args.port, data_dir=args.data_dir)
    try:
        load_seed(server.state, read_seed(args.seed))
    except (OSError, SeedError) as exc:
        print(f"sfsim: cannot load seed {args.seed}: {exc}", file=sys.stderr)
        return 2
    print(describe(server), flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
