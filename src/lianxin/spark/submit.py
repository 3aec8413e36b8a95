"""The file to hand spark-submit: `spark-submit [options] <this file> --readings ... --out ...`
runs `lianxin spark replay` with those arguments (print its path with
`python -c 'import lianxin.spark.submit as m; print(m.__file__)'`)."""

import sys

from lianxin.cli import main

if __name__ == "__main__":
    sys.exit(main(["spark", "replay", *sys.argv[1:]]))
