"""``edgesim images`` and ``edgesim cleanup``: the Docker tier's commands (imported lazily)."""

from __future__ import annotations

import argparse
import sys


def cmd_images_build(args: argparse.Namespace) -> int:
    from pytest_edgesim.docker.images import IMAGE_NAMES, ensure_image

    names = args.names or list(IMAGE_NAMES)
    for name in names:
        tag = ensure_image(
            name,
            offline=True if args.offline else None,
            progress=lambda line: print(line, file=sys.stderr),
            latest=True,
        )
        print(f"{name}: {tag}")
    return 0


def cmd_images_list(args: argparse.Namespace) -> int:
    from pytest_edgesim.docker.images import list_images

    images = list_images()
    width = max((len(image.label) for image in images), default=0)
    for image in images:
        print(image.row(width))
    return 0


def cmd_cleanup(args: argparse.Namespace) -> int:
    from pytest_edgesim.docker.cleanup import reap_stale, remove_session
    from pytest_edgesim.docker.engine import connect

    client = connect(reap=False)  # this command reports what it removes
    removed = (
        remove_session(client, args.session)
        if args.session
        else reap_stale(client, everything=args.all, include_kept=True)
    )
    for item in removed:
        print(f"removed {item}")
    if not removed:
        print("nothing to remove")
    return 0


def add_docker_commands(commands: argparse._SubParsersAction) -> None:
    images = commands.add_parser("images", help="build or list the project's container images")
    image_commands = images.add_subparsers(dest="images_command", metavar="ACTION", required=True)
    build = image_commands.add_parser("build", help="build the images (cached by content hash)")
    build.add_argument("names", nargs="*", help="broker, gateway (default: all)")
    build.add_argument(
        "--offline", action="store_true", help="build from a local Debian base, no registry"
    )
    build.set_defaults(handler=cmd_images_build)
    listing = image_commands.add_parser(
        "list", help="list the images built here (a scenario's docker.build ones as user:NAME)"
    )
    listing.set_defaults(handler=cmd_images_list)

    cleanup = commands.add_parser(
        "cleanup",
        help="remove containers and networks left by edgesim sessions that are over, "
        "kept ones (--edgesim-keep-containers) included",
    )
    cleanup.add_argument("--session", help="remove everything of this session id")
    cleanup.add_argument("--all", action="store_true", help="remove every edgesim resource")
    cleanup.set_defaults(handler=cmd_cleanup)
