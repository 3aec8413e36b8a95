import argparse


def add_arguments(parser):
    parser.add_argument(
        "argv", nargs=argparse.REMAINDER, help="the management command and its arguments"
    )


def run(args) -> int:
    from django.core.management import execute_from_command_line

    from lianxin.web.setup import setup_django

    setup_django()
    execute_from_command_line(["lianxin manage", *args.argv])
    return 0
