def add_arguments(parser):
    parser.add_argument(
        "--seed", type=int, default=2021, help="random seed of the demo town (default %(default)s)"
    )
    parser.add_argument(
        "--households", type=int, default=240, help="households in the town (default %(default)s)"
    )
    parser.add_argument("--seed-only", action="store_true", help="seed the database and exit")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)


def run(args) -> int:
    from lianxin.web.setup import migrate, setup_django

    setup_django()
    migrate()
    from lianxin.care.seed import DEMO_PASSWORD, DEMO_USERS, is_seeded, seed_demo_town

    if is_seeded():
        print("demo town already seeded (delete the data directory to start afresh)")
    else:
        s = seed_demo_town(seed=args.seed, households=args.households)
        print(
            f"seeded demo town (seed {args.seed}): {s.households} households on "
            f"{s.transformer_areas} transformer areas, {s.meters} meters, "
            f"{s.care_recipients} care recipients"
        )
    print(f"logins (password for all: {DEMO_PASSWORD}):")
    for user in DEMO_USERS:
        print(f"  {user.username:<10} {user.role}")
    if args.seed_only:
        return 0
    from lianxin.commands.serve import serve

    print(f"duty room: http://{args.host}:{args.port}/", flush=True)
    serve(args.host, args.port)
    return 0
