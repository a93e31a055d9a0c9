"""``eldric-cloudd``: configure, migrate, discover, then serve."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from eldric_cloud.startup import ConfigError, FileConfig, load_config_file, merge_backends, parse_backends_flag

logger = logging.getLogger("eldric_cloud.cli")

DESCRIPTION = """\
Eldric Cloud Worker: one OpenAI-compatible endpoint in front of many LLM providers.
Requests are routed by model name to the backend that serves it."""

EPILOG = """\
backends:
  --backends "name:url:apikey,..."   first entry = highest priority
  An empty key reads <NAME>_API_KEY from the environment (dashes become underscores).
  Known provider names need no URL: --backends "xai::,anthropic::"
  Examples:
    --backends "xai:https://api.x.ai/v1:KEY1,openai:https://api.openai.com/v1:KEY2"
    --backends "ollama-remote:http://10.0.0.5:11434,x:https://h.example:8443/v1:KEY"

zero-downtime restart (same port, new process first):
  eldric-cloudd --reuse-port ...        then later:   eldric-cloudd --replace <old pid> ...

environment:
  ELDRIC_DATA_DIR     where SQLite, keys and the embedded broker live (default ./var)
  DATABASE_URL        e.g. postgres://user@host/db (default: SQLite in the data dir)
  REDIS_URL           Redis for Celery and the cache (default: none needed)
  ELDRIC_LICENSE_FILE, ELDRIC_LICENSE_PUBLIC_KEYS   the license and the keys it must be signed with
  See the README for every variable.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eldric-cloudd",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, help="listen port (default 8889, or the config file's)")
    parser.add_argument("--host", default="0.0.0.0", help="listen address (default 0.0.0.0)")
    parser.add_argument("--backends", help='comma-separated "name:url:apikey" list; order is priority')
    parser.add_argument(
        "--default-backend", metavar="NAME", help="backend for models no backend lists (default: the first backend)"
    )
    parser.add_argument("--config", metavar="FILE", help="JSON config file (the seed's format); flags override it")
    parser.add_argument("--controller", metavar="URL", help="Eldric controller URL for registration and heartbeat")
    parser.add_argument(
        "--health-interval", type=int, metavar="MS", help="health check interval in milliseconds (default 60000)"
    )
    parser.add_argument(
        "--server",
        choices=("daphne", "uvicorn"),
        default="daphne",
        help="ASGI server (default daphne; uvicorn is faster, see README)",
    )
    parser.add_argument(
        "--reuse-port",
        action="store_true",
        help="listen with SO_REUSEPORT, so a new eldric-cloudd can start beside this one (also ELDRIC_REUSE_PORT=1)",
    )
    parser.add_argument(
        "--replace",
        type=int,
        metavar="PID",
        help="zero-downtime restart: once ready, send SIGTERM to PID (the running eldric-cloudd, which drains); "
        "implies --reuse-port, and the old process must have been started with it",
    )
    parser.add_argument(
        "--license",
        metavar="FILE",
        help="install this license file (from license_issue) at start-up; also ELDRIC_LICENSE_FILE. "
        "Without one the Free tier applies",
    )
    parser.add_argument("--data-dir", metavar="DIR", help="overrides ELDRIC_DATA_DIR")
    parser.add_argument(
        "--no-worker",
        action="store_true",
        help="do not start the embedded Celery worker (run `celery -A eldric_cloud worker -B` yourself)",
    )
    return parser


class Options:
    """The merged result of flags and config file."""

    def __init__(self, args: argparse.Namespace, file: FileConfig) -> None:
        self.host = args.host
        self.port = args.port or file.port or 8889
        self.backends = merge_backends(file.backends, parse_backends_flag(args.backends) if args.backends else [])
        self.default_backend = args.default_backend or file.default_backend or ""
        self.controller_url = args.controller or file.controller_url or ""
        self.health_interval_ms = args.health_interval or file.health_check_interval_ms or 60_000
        self.server = args.server
        self.config_path = args.config
        self.embedded_worker = not args.no_worker
        self.data_dir = args.data_dir
        self.license_path = args.license
        self.replace_pid = args.replace
        self.reuse_port = args.reuse_port or bool(args.replace)
        if not 0 < self.port < 65536:
            raise ConfigError(f"--port: {self.port} is not a TCP port")
        if self.replace_pid is not None and self.replace_pid <= 1:
            raise ConfigError(f"--replace: {self.replace_pid} is not the pid of a running eldric-cloudd")
        if self.health_interval_ms < 100:
            raise ConfigError("--health-interval: must be at least 100 ms")


def parse_options(argv: list[str]) -> Options:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        file = load_config_file(args.config) if args.config else FileConfig()
        return Options(args, file)
    except ConfigError as exc:
        parser.exit(2, f"eldric-cloudd: error: {exc}\n")


def main(argv: list[str] | None = None) -> int:
    from eldric_cloud.process_memory import limit_malloc_arenas, skip_unused_imports

    limit_malloc_arenas()
    argv = sys.argv[1:] if argv is None else argv
    options = parse_options(argv)
    if options.data_dir:
        os.environ["ELDRIC_DATA_DIR"] = os.path.abspath(options.data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eldric_cloud.settings")
    skip_unused_imports()
    import django

    django.setup()
    from traffic.services import metrics_dir_reset

    # Metrics files of an earlier run would be summed with this one's; the worker starts after.
    metrics_dir_reset()
    from eldric_cloud import bootstrap
    from eldric_cloud.reload import ConfigReloader

    # The reloader merges a re-read --config file with the flags alone, as at start-up. SIGHUP
    # is caught from here on, so one sent during start-up is served once serving begins.
    reloader = ConfigReloader(options, build_parser().parse_args(argv))
    reloader.install_sighup()
    try:
        state = bootstrap.prepare(options)
    except ConfigError as exc:
        print(f"eldric-cloudd: error: {exc}", file=sys.stderr)
        return 2
    worker = None
    if options.embedded_worker:
        from eldric_cloud.worker_supervisor import EmbeddedWorker

        worker = EmbeddedWorker.from_settings()
        worker.start()
    try:
        return bootstrap.serve(options, state, reloader=reloader)
    except ConfigError as exc:
        print(f"eldric-cloudd: error: {exc}", file=sys.stderr)
        return 2
    finally:
        # After the server has drained: background work outlives the requests, not the other way round.
        if worker is not None:
            worker.stop()
        # The last connection to close folds SQLite's write-ahead log back into the database.
        from django.db import connections

        connections.close_all()


if __name__ == "__main__":
    sys.exit(main())
