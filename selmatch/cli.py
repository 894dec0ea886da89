"""The ``selmatch`` command line. Each subcommand is a thin wrapper over the library."""
from __future__ import annotations

import argparse
import json
import sys

from . import __version__
from .data import DATASETS, load_dataset
from .scores import SCORE_KINDS, find_score_file


def cmd_data(args: argparse.Namespace) -> int:
    ds = load_dataset(args.name, root=args.root, cache=args.cache, download=not args.no_download)
    info = ds.summary()
    info["scores"] = {}
    for kind in SCORE_KINDS:
        path = find_score_file(ds, kind, cache=args.cache)
        info["scores"][kind] = str(path) if path else None
    json.dump(info, sys.stdout, indent=2)
    print()
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="selmatch", description=__doc__)
    p.add_argument("--version", action="version", version=f"selmatch {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("data", help="load a dataset and print a JSON summary of it",
                       description="Load a dataset (see `selmatch.data`) and print where it came from, "
                                   "its counts, image shape, normalisation and which scores exist.")
    d.add_argument("name", choices=list(DATASETS), help="dataset name")
    d.add_argument("--root", help="torchvision-style data folder (default <cache>/datasets)")
    d.add_argument("--cache", help="cache root (default $SELMATCH_CACHE or ~/.cache/selmatch)")
    d.add_argument("--no-download", action="store_true", help="never download")
    d.set_defaults(func=cmd_data)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:  # expected user errors: one clear line, no traceback
        print(f"selmatch {args.command}: error: {e}", file=sys.stderr)
        return 2
