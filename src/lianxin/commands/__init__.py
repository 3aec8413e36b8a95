"""One module per `lianxin` subcommand: add_arguments(parser) and run(args) -> int."""
