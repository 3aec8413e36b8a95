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
    bind(host, port, threads).run()


def bind(host: str, port: int, threads: int = 8):
    """The web server, listening once this returns (so a URL printed after it answers); .run()
    serves."""
    import waitress.server

    from lianxin.web.wsgi import application

    server = waitress.server.create_server(
        application, host=host, port=port, threads=threads, ident="lianxin"
    )
    print(f"serving on http://{host}:{port}/  (Ctrl-C to stop)", file=sys.stderr, flush=True)
    return server
