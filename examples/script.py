"""Evaluate a few flags with FlagShip's Python SDK, then print every change as it happens.

    export FLAGSHIP_URL=http://127.0.0.1:8000
    export FLAGSHIP_SERVER_KEY=fss_...
    python examples/script.py --user user-42 --watch 60

Needs only the SDK (``pip install ./sdk/python``). Exits 2 when the environment is not set, 1 when
FlagShip does not become ready within ``--ready-timeout`` seconds (after printing the defaults it
would serve).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import threading

from flagship_sdk import ClientEvent, FlagShipClient


def show(text: str) -> None:
    """Print one line (the example's output)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def print_evaluations(client: FlagShipClient, context: dict[str, str]) -> None:
    """A few evaluations: typed getters for the values, ``evaluate`` for the details."""
    # The flags of FlagShip's demo project (`make run` creates them); any others work the same.
    show(f"new-checkout enabled:    {client.is_enabled('new-checkout', context)}")
    show(f"banner-text:             {client.get_string('banner-text', '', context)!r}")
    show(f"search-results-per-page: {client.get_number('search-results-per-page', 20, context)}")
    show(f"checkout-config:         {client.get_json('checkout-config', {}, context)}")
    details = client.evaluate("new-checkout", False, context)
    show(
        f"details: value={details.value!r} variant={details.variant} reason={details.reason} "
        f"rule={details.rule} error={details.error_code} version={details.version}"
    )
    for key, flag in sorted(client.evaluate_all(context).items()):
        show(f"  {key}: {flag.value!r} ({flag.variant}, {flag.reason})")


def main(argv: list[str] | None = None) -> int:
    """Run the example; the exit status says whether FlagShip was ready."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--user", default="user-42", help="the targeting key")
    parser.add_argument("--country", default=None, help="a context attribute")
    parser.add_argument("--ready-timeout", type=float, default=5.0, help="seconds to wait")
    parser.add_argument(
        "--watch", type=float, default=0.0, help="seconds to keep printing changes (0: exit)"
    )
    args = parser.parse_args(argv)

    url = os.environ.get("FLAGSHIP_URL")
    key = os.environ.get("FLAGSHIP_SERVER_KEY")
    if not url or not key:
        show("set FLAGSHIP_URL and FLAGSHIP_SERVER_KEY (an fss_... server key)")
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")

    context = {"targetingKey": args.user}
    if args.country:
        context["country"] = args.country

    with FlagShipClient(url, key) as client:

        def on_event(event: ClientEvent) -> None:
            # Called on the client's thread: keep it short.
            show(f"event: {event.type} version={event.version} message={event.message}")
            if event.type == "changed":
                show(f"  flags changed: {event.flags_changed or 'unknown (re-evaluate all)'}")
                print_evaluations(client, context)

        unsubscribe = client.add_listener(on_event)
        ready = client.wait_until_ready(timeout=args.ready_timeout)
        show(f"ready: {ready} (status {client.status}, data from {client.data_source})")
        print_evaluations(client, context)
        if args.watch > 0:
            show(f"watching for changes for {args.watch:g} s (Ctrl-C to stop)...")
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait(args.watch)
        unsubscribe()
    return 0 if ready else 1


if __name__ == "__main__":
    sys.exit(main())
