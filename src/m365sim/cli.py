"""``m365sim serve``: run the local Microsoft 365 tenant in the foreground."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from m365sim.seed import DEMO_SEED, SeedError, load_seed, read_seed
from m365sim.server import SimServer


def describe(server: SimServer) -> str:
    lines = [
        f"m365sim is listening on {server.url}",
        f"  Graph base URL:     {server.graph_url}",
        f"  CA bundle (trust):  {server.tls.ca_bundle}",
        f"  m365sim CA only:    {server.tls.ca_pem}",
    ]
    for tenant in server.state.tenants.values():
        lines.append(
            f"  Tenant {tenant.display_name}: id {tenant.id}, domains {', '.join(tenant.domains)}"
        )
        lines.append(f"    authority: {server.authority(tenant.id)}")
        for app in tenant.apps.values():
            granted = sorted(tenant.service_principals[app.app_id].granted_application_permissions)
            lines.append(f"    app {app.display_name!r}: client id {app.app_id}")
            for secret in app.secrets:
                lines.append(
                    f"      secret value {secret.value} (ID {secret.key_id}, "
                    f"expires {secret.expires_at:%Y-%m-%d})"
                )
            lines.append(f"      admin consent: {', '.join(granted) if granted else 'not granted'}")
    lines.append(
        "Trust it with: export SSL_CERT_FILE=... REQUESTS_CA_BUNDLE=... (the CA bundle above)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="m365sim", description="A local Microsoft 365 tenant.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve", help="serve Entra ID, Graph and the /_sim control API over HTTPS"
    )
    serve.add_argument(
        "--seed",
        type=Path,
        default=DEMO_SEED,
        help="seed file (YAML/JSON); default: the demo tenant",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8443)
    serve.add_argument(
        "--data-dir", type=Path, default=Path(".m365sim"), help="where the CA and bundle are kept"
    )
    args = parser.parse_args(argv)

    server = SimServer(host=args.host, port=args.port, data_dir=args.data_dir)
    try:
        load_seed(server.state, read_seed(args.seed))
    except (OSError, SeedError) as exc:
        print(f"m365sim: cannot load seed {args.seed}: {exc}", file=sys.stderr)
        return 2
    print(describe(server), flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
