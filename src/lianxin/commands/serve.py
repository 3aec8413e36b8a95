import sys


def add_arguments(parser):
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default %(default)s)"
    )
    parser.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    parser.add_argument(
        "--threads", type=int, default=8, help="worker threads (default %(default)s)"
    )


def run(args) -> int:
    from lianxin.web.setup import require_migrated, setup_django

    setup_django()
    require_migrated()
    serve(args.host, args.port, args.threads)
    return 0


def serve(host: str, port: int, threads: int = 8):
    import waitress

    from lianxin.web.wsgi import application

    print(f"serving on http://{host}:{port}/  (Ctrl-C to stop)", file=sys.stderr, flush=True)
    waitress.serve(application, host=host, port=port, threads=threads, ident="lianxin", _quiet=True)
