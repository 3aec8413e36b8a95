def add_arguments(parser):
    parser.add_argument("-v", "--verbosity", type=int, choices=[0, 1, 2, 3], default=1)


def run(args) -> int:
    from lianxin.web.setup import migrate, setup_django

    setup_django()
    from django.conf import settings

    db = settings.DATABASES["default"]
    where = db["NAME"] if db["ENGINE"].endswith("sqlite3") else f"{db['HOST']}/{db['NAME']}"
    migrate(verbosity=max(0, args.verbosity - 1))
    if args.verbosity:
        print(f"database ready: {where}")
        print(f"data directory: {settings.LIANXIN_HOME}")
    return 0
