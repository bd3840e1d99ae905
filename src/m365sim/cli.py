"""``m365sim serve``: run the local Microsoft 365 tenant in the foreground."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from m365sim.latency import LATENCY_PROFILES, apply_latency_profile
from m365sim.seed import DEMO_SEED, SeedError, load_seed, read_seed
from m365sim.server import SimServer
from m365sim.state import SimConfig


def latency_summary(server: SimServer) -> str:
    config = server.state.config
    if config.latency_base_ms <= 0 and config.latency_per_kib_ms <= 0:
        return "none (answers at once)"
    return (
        f"{config.latency_base_ms} ms + {config.latency_per_kib_ms} ms/KiB, "
        f"jitter {config.latency_jitter}, seed {config.latency_seed}"
    )


def describe(server: SimServer) -> str:
    lines = [
        f"m365sim is listening on {server.url}",
        f"  Graph base URL:     {server.graph_url}",
        f"  CA bundle (trust):  {server.tls.ca_bundle}",
        f"  m365sim CA only:    {server.tls.ca_pem}",
        f"  Latency:            {latency_summary(server)}",
    ]
    if server.state.config.allow_http_notification_urls:
        lines.append(
            "  Webhooks:           http:// notification URLs accepted (Graph refuses them)"
        )
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


def _non_negative(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < 0:
            raise argparse.ArgumentTypeError("must not be negative")
        return value

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
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
    serve.add_argument(
        "--latency",
        choices=sorted(LATENCY_PROFILES),
        default="realistic",
        help="latency model profile (default: realistic; 'none' answers at once)",
    )
    serve.add_argument(
        "--latency-base-ms", type=_non_negative(int), help="fixed delay per request (ms)"
    )
    serve.add_argument(
        "--latency-per-kib-ms",
        type=_non_negative(float),
        help="extra delay per KiB of the answer (ms)",
    )
    serve.add_argument(
        "--latency-jitter", type=_non_negative(float), help="log-normal sigma (0: no jitter)"
    )
    serve.add_argument(
        "--latency-seed", type=_non_negative(int), help="seed of the jitter's random draws"
    )
    serve.add_argument(
        "--allow-http-webhooks",
        action="store_true",
        help="accept http:// notification URLs (Graph requires https; local development only)",
    )
    return parser.parse_args(argv)


def configure(config: SimConfig, args: argparse.Namespace) -> None:
    """The ``--latency`` profile, then any single knob given on the command line."""
    config.allow_http_notification_urls = args.allow_http_webhooks
    apply_latency_profile(config, args.latency)
    for option in ("base_ms", "per_kib_ms", "jitter", "seed"):
        value = getattr(args, f"latency_{option}")
        if value is not None:
            setattr(config, f"latency_{option}", value)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server = SimServer(host=args.host, port=args.port, data_dir=args.data_dir)
    configure(server.state.config, args)
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
