"""The `gradd` command: watch a training session, list sessions, draw a tensor's graph.

It talks to a gradd-server with the generated gradd.v1 stubs only (no SDK). Tokens come from
flags or environment variables and are never printed; a failed call exits 2 with one line.

    gradd watch HOST:PORT SESSION [--png loss.png] [--graph graph.svg]   (GRADD_TOKEN)
    gradd sessions HOST:PORT [HOST:PORT ...]                             (GRADD_ADMIN_TOKEN)
    gradd graph HOST:PORT SESSION HANDLE [-o graph.svg]                  (GRADD_TOKEN)
    gradd dashboard HOST:PORT [SESSION] [--port 8080]     (GRADD_ADMIN_TOKEN or GRADD_TOKEN)

Every command takes --tls, --root-certificates, --client-certificate and --client-key (or a
grpcs://HOST:PORT target), as gradd.connect does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

# gRPC's own log lines (an INFO line for every failed TLS handshake) would break the one-line
# errors: set before gRPC is loaded, unless the user chose a verbosity.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import grpc  # noqa: E402
from gradd.v1 import service_pb2 as spb  # noqa: E402
from gradd.v1 import service_pb2_grpc as spb_grpc  # noqa: E402

from .cli_render import why_not_rendered, write_graph  # noqa: E402
from .cli_watch import Watch, WatchOptions  # noqa: E402
from .endpoint import Endpoint  # noqa: E402

EXIT_FAILED = 2  # a call failed, or a usage error (argparse's own code)
_MESSAGE_LIMIT = 1 << 30  # graph snapshots of big models are large; the server sets the real cap
_CALL_TIMEOUT = 30.0
_TOKEN_HINT = "give the session's token with --token or GRADD_TOKEN"


class CliError(Exception):
    """A failure reported as one line and exit status 2."""


def _endpoint(args: argparse.Namespace, target: str | None = None) -> Endpoint:
    try:
        return Endpoint.of(
            target or args.target,
            tls=args.tls or None,
            root_certificates=args.root_certificates,
            client_certificate=args.client_certificate,
            client_key=args.client_key,
        )
    except (OSError, ValueError) as exc:
        raise CliError(str(exc)) from None


def _channel(args: argparse.Namespace, target: str | None = None) -> grpc.Channel:
    options = [
        ("grpc.max_receive_message_length", _MESSAGE_LIMIT),
        ("grpc.max_send_message_length", _MESSAGE_LIMIT),
    ]
    return _endpoint(args, target).channel(options)


def _token(flag: str | None, *env_names: str) -> str | None:
    """The token from its flag, else the first environment variable that is set."""
    if flag:
        return flag
    return next((os.environ[name] for name in env_names if os.environ.get(name)), None)


def _metadata(token: str | None, session: str = "") -> tuple[tuple[str, str], ...]:
    """The token, and the session's id as x-gradd-session: a proxy in front of several
    replicas routes the call to the session's (as it routes the SDK's calls)."""
    auth = (("authorization", f"Bearer {token}"),) if token else ()
    return (*auth, ("x-gradd-session", session)) if session else auth


def describe_rpc_error(
    err: grpc.RpcError,
    target: str,
    secrets: Sequence[str] = (),
    hint: str = "",
    endpoint: Endpoint | None = None,
) -> str:
    """One line for a failed call: its status and the server's message, tokens scrubbed; the
    endpoint called (if given) explains a failed TLS handshake."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = (err.details() if hasattr(err, "details") else str(err)) or ""
    if code == grpc.StatusCode.UNAVAILABLE:
        tls = endpoint.failure_hint(details) if endpoint is not None else ""
        details = f"cannot reach a gradd-server at {target} ({details})"
        details = f"{details} {tls}" if tls else details
    elif code == grpc.StatusCode.UNAUTHENTICATED and hint:
        details += f" ({hint})"
    for secret in secrets:
        if secret:
            details = details.replace(secret, "<token>")
    return f"{code.name}: {' '.join(details.split())}"


def cmd_watch(args: argparse.Namespace) -> int:
    """Follow a session until it ends or Ctrl-C; write the pictures asked for at the end."""
    token = _token(args.token, "GRADD_TOKEN", "GRADD_ADMIN_TOKEN")
    live = args.live if args.live is not None else sys.stdout.isatty()
    options = WatchOptions(
        png=args.png,
        graph=args.graph,
        every=args.every,
        print_every=args.print_every,
        live=live and _has_rich(),
        tensorboard=args.tensorboard,
    )
    with _channel(args) as channel:
        stub = spb_grpc.AutogradServiceStub(channel)
        request = spb.WatchRequest(
            session_id=args.session, steps_only=not (args.graph or args.tensorboard)
        )
        call = stub.Watch(request, metadata=_metadata(token, args.session))
        watch = Watch(args.session, options)
        try:
            watch.run(call, cancel=call.cancel)
        except grpc.RpcError as err:
            raise CliError(
                describe_rpc_error(err, args.target, [token or ""], _TOKEN_HINT, _endpoint(args))
            ) from None
    return 0


def cmd_sessions(args: argparse.Namespace) -> int:
    """Print every session of one or more servers (admin token) as a table, or as JSON lines;
    several targets (the replicas behind a proxy) make one list with a SERVER column."""
    token = _token(args.admin_token, "GRADD_ADMIN_TOKEN")
    if not token:
        raise CliError("gradd sessions needs the server's admin token: set GRADD_ADMIN_TOKEN")
    listed = []
    for target in args.target:
        with _channel(args, target) as channel:
            stub = spb_grpc.AutogradServiceStub(channel)
            try:
                response = stub.ListSessions(
                    spb.ListSessionsRequest(), metadata=_metadata(token), timeout=_CALL_TIMEOUT
                )
            except grpc.RpcError as err:
                endpoint = _endpoint(args, target)
                raise CliError(
                    describe_rpc_error(err, target, [token], endpoint=endpoint)
                ) from None
        listed += [(target, s) for s in response.sessions]
    several = len(args.target) > 1
    rows = [
        {
            **({"server": target} if several else {}),
            "session": s.session_id,
            "label": s.label,
            "device": s.device,
            "age": s.age_seconds,
            "idle": s.idle_seconds,
            "tensors": s.tensors,
            "bytes": s.bytes,
            "steps": s.steps,
            "watchers": s.watchers,
        }
        for target, s in sorted(listed, key=lambda ts: -ts[1].age_seconds)
    ]
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        print(session_table(rows))
    return 0


def session_table(rows: list[dict]) -> str:
    """Sessions as an aligned text table (ages and sizes in human units)."""
    server = ["SERVER"] if rows and "server" in rows[0] else []
    columns = ["SESSION", "LABEL", "DEVICE", "AGE", "IDLE", "TENSORS", "BYTES", "STEPS", "WATCHERS"]
    header = [*server, *columns]
    lines = [header]
    for r in rows:
        lines.append(
            [
                *([r["server"]] if server else []),
                r["session"],
                r["label"] or "-",
                r["device"],
                human_seconds(r["age"]),
                human_seconds(r["idle"]),
                str(r["tensors"]),
                human_bytes(r["bytes"]),
                str(r["steps"]),
                str(r["watchers"]),
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines]
    text.append(f"{len(rows)} session{'s' if len(rows) != 1 else ''}")
    return "\n".join(text)


def human_seconds(seconds: float) -> str:
    """`42s`, `3m05s`, `2h10m`, `1d04h`."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def human_bytes(n: int) -> str:
    """`512 B`, `1.5 KiB`, `64.0 MiB`, `2.0 GiB`."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def cmd_graph(args: argparse.Namespace) -> int:
    """Draw one tensor's graph: render it to -o, or print the DOT text."""
    token = _token(args.token, "GRADD_TOKEN", "GRADD_ADMIN_TOKEN")
    params = {}
    for item in args.param:
        label, sep, handle = item.partition("=")
        if not sep or not label or not handle:
            raise CliError(f"--param wants LABEL=HANDLE, not {item!r}")
        params[label] = handle
    request = spb.GetGraphRequest(session_id=args.session, handle=args.handle, params=params)
    with _channel(args) as channel:
        stub = spb_grpc.AutogradServiceStub(channel)
        try:
            snapshot = stub.GetGraph(
                request, metadata=_metadata(token, args.session), timeout=_CALL_TIMEOUT
            )
        except grpc.RpcError as err:
            raise CliError(
                describe_rpc_error(err, args.target, [token or ""], _TOKEN_HINT, _endpoint(args))
            ) from None
    if not args.output:
        sys.stdout.write(snapshot.dot if snapshot.dot.endswith("\n") else snapshot.dot + "\n")
        return 0
    path, rendered = write_graph(args.output, snapshot.dot)
    if rendered:
        print(f"wrote {path} ({len(snapshot.nodes)} nodes)")
    else:
        reason = why_not_rendered(args.output)
        print(f"wrote {path}: DOT text ({reason}; render with `dot -Tsvg {path} -o out.svg`)")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Serve the live page until Ctrl-C: every session (admin token) or one (its token)."""
    try:
        from . import dashboard
    except ImportError as err:
        raise CliError(
            f"gradd dashboard needs the dashboard extra (pip install 'gradd[dashboard]'): {err}"
        ) from None
    if not args.refresh >= 0.5:
        raise CliError(f"--refresh must be at least 0.5 seconds, not {args.refresh}")
    token = _token(args.token, "GRADD_TOKEN")
    admin = _token(args.admin_token, "GRADD_ADMIN_TOKEN")
    if args.session is None and not admin:
        raise CliError(
            "every session needs the server's admin token (--admin-token or GRADD_ADMIN_TOKEN); "
            "for one session give its id and token (SESSION, --token or GRADD_TOKEN)"
        )
    if args.session is not None and not (token or admin):
        raise CliError(_TOKEN_HINT)
    secrets = [token or "", admin or ""]
    board = dashboard.Board()
    endpoint = _endpoint(args)
    feeds = dashboard.Feeds(
        _channel(args),
        board,
        token=token,
        admin_token=admin,
        session=args.session,
        refresh=args.refresh,
        describe=lambda err: describe_rpc_error(err, args.target, secrets, _TOKEN_HINT, endpoint),
    )
    if args.session is None:  # a wrong admin token or a missing server: say so before serving
        try:
            feeds.list_once()
        except grpc.RpcError as err:
            feeds.close()
            why = describe_rpc_error(err, args.target, secrets, endpoint=endpoint)
            raise CliError(why) from None
    try:
        sock = dashboard.bind(args.host, args.port)
    except OSError as err:
        feeds.close()
        raise CliError(f"cannot listen on {args.host}:{args.port}: {err.strerror}") from None
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"gradd dashboard: http://{shown}:{port}/ (Ctrl-C stops)", flush=True)
    dashboard.serve(dashboard.make_app(board, feeds, args.target), sock)
    return 0


def _has_rich() -> bool:
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


def build_parser() -> argparse.ArgumentParser:
    """The `gradd` argument parser with its three subcommands."""
    parser = argparse.ArgumentParser(
        prog="gradd", description="gradd, the autograd daemon: watch and inspect a gradd-server."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    token_help = "session token (default: $GRADD_TOKEN, then $GRADD_ADMIN_TOKEN)"
    tls = argparse.ArgumentParser(add_help=False)
    group = tls.add_argument_group("TLS (a grpcs://HOST:PORT target also means TLS)")
    group.add_argument("--tls", action="store_true", help="connect over TLS")
    group.add_argument(
        "--root-certificates",
        metavar="PEM",
        help="CA certificates that sign the server's (implies --tls; default: the system's)",
    )
    group.add_argument(
        "--client-certificate", metavar="PEM", help="this client's certificate, for mutual TLS"
    )
    group.add_argument("--client-key", metavar="PEM", help="the key of --client-certificate")

    watch = sub.add_parser(
        "watch", parents=[tls], help="follow a session's training: step, loss, rate"
    )
    watch.add_argument("target", metavar="HOST:PORT")
    watch.add_argument("session", metavar="SESSION")
    watch.add_argument("--token", help=token_help)
    watch.add_argument("--png", metavar="FILE", help="write the loss curve here (PNG)")
    watch.add_argument(
        "--graph", metavar="FILE", help="write the latest graph here (.svg, .png, .pdf or .dot)"
    )
    watch.add_argument(
        "--every",
        type=int,
        default=0,
        metavar="N",
        help="also write the pictures every N steps (SIGUSR1 writes them at once; always on exit)",
    )
    watch.add_argument(
        "--print-every", type=int, default=1, metavar="N", help="plain output: a line per N steps"
    )
    watch.add_argument(
        "--tensorboard",
        metavar="DIR",
        help="also write TensorBoard events here: loss and step rate, graphs as images",
    )
    mode = watch.add_mutually_exclusive_group()
    mode.add_argument(
        "--live",
        dest="live",
        action="store_true",
        default=None,
        help="one live status line (rich; the default on a terminal)",
    )
    mode.add_argument("--plain", dest="live", action="store_false", help="a line per step")
    watch.set_defaults(func=cmd_watch)

    sessions = sub.add_parser(
        "sessions", parents=[tls], help="list a server's sessions (admin token)"
    )
    sessions.add_argument(
        "target",
        metavar="HOST:PORT",
        nargs="+",
        help="a server, or every replica behind a proxy (one list, with a SERVER column)",
    )
    sessions.add_argument(
        "--admin-token", help="the server's admin token (default: $GRADD_ADMIN_TOKEN)"
    )
    sessions.add_argument("--json", action="store_true", help="one JSON object per session")
    sessions.set_defaults(func=cmd_sessions)

    graph = sub.add_parser("graph", parents=[tls], help="draw one tensor's autograd graph")
    graph.add_argument("target", metavar="HOST:PORT")
    graph.add_argument("session", metavar="SESSION")
    graph.add_argument("handle", metavar="HANDLE", help="the tensor's handle in the session")
    graph.add_argument("--token", help=token_help)
    graph.add_argument(
        "-o", "--output", metavar="FILE", help=".svg, .png, .pdf or .dot (default: DOT to stdout)"
    )
    graph.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="LABEL=HANDLE",
        help="name a leaf in the picture, as make_dot's params (repeatable)",
    )
    graph.set_defaults(func=cmd_graph)

    dash = sub.add_parser(
        "dashboard", parents=[tls], help="a live web page of the sessions training"
    )
    dash.add_argument("target", metavar="HOST:PORT")
    dash.add_argument(
        "session",
        metavar="SESSION",
        nargs="?",
        help="show this session only (its token); default: every session (admin token)",
    )
    dash.add_argument("--port", type=int, default=8080, help="the page's port (0: a free one)")
    dash.add_argument(
        "--host", default="127.0.0.1", help="the page's address (default: loopback only)"
    )
    dash.add_argument("--token", help="the session's token (default: $GRADD_TOKEN)")
    dash.add_argument(
        "--admin-token", help="the server's admin token (default: $GRADD_ADMIN_TOKEN)"
    )
    dash.add_argument(
        "--refresh",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="how often to list the sessions (admin token; steps arrive as they happen)",
    )
    dash.set_defaults(func=cmd_dashboard)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `gradd`; 0 on success, 2 with a one-line message when a call fails."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CliError as err:
        print(f"gradd {args.command}: {err}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
