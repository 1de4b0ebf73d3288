"""Latency, jitter, loss and rate on a container's link with ``tc netem``, the kernel's own.

``tc`` runs in a throwaway helper container that joins the target's network namespace
(``--network container:<id>``) with ``NET_ADMIN`` only, never ``--privileged``, so the
target image needs neither ``tc`` nor extra capabilities. The qdisc sits on the egress of the
target's interface (``eth0``): everything the container sends is delayed, which for a
request/response protocol such as MQTT delays every answer and every forwarded message.

Not every kernel has ``sch_netem`` (minimal VM and CI kernels often lack it).
:func:`netem_support` finds out for real, by adding a netem qdisc in a helper's own
namespace, once per engine; :mod:`.impairment` then falls back to the TCP proxy.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from dataclasses import dataclass

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from pytest_edgesim.docker.labels import resource_labels, resource_name
from pytest_edgesim.docker.limits import container_limits
from pytest_edgesim.errors import EdgesimError

DEFAULT_INTERFACE = "eth0"
_HELPER_TIMEOUT_S = 30


class NetemError(EdgesimError):
    """``tc`` failed in the helper container; the message carries its output."""

    def __init__(self, command: str, output: str):
        self.command = command
        self.output = output or "no output"
        super().__init__(f"`{command}` failed in the netem helper: {self.output}")


class NetemUnavailableWarning(UserWarning):
    """The engine's kernel has no netem: impairment falls back to the TCP proxy."""


@dataclass(frozen=True)
class NetemSupport:
    """Whether netem works on an engine, and why not when it does not."""

    available: bool
    reason: str


@dataclass(frozen=True)
class NetemSettings:
    """One netem qdisc: a delay with uniform jitter, random loss and a rate cap.

    ``jitter_ms`` is spread uniformly around ``latency_ms`` (netem's default distribution);
    ``loss_rate`` is a probability in [0, 1]; ``rate_kbit_s`` ``None`` means no cap.
    """

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_rate: float = 0.0
    rate_kbit_s: float | None = None

    def __post_init__(self) -> None:
        if self.latency_ms < 0 or self.jitter_ms < 0:
            raise EdgesimError(
                f"netem latency and jitter must be >= 0 ms, got latency_ms={self.latency_ms} "
                f"and jitter_ms={self.jitter_ms}"
            )
        if not 0.0 <= self.loss_rate <= 1.0:
            raise EdgesimError(f"netem loss_rate must be in [0, 1], got {self.loss_rate}")
        if self.rate_kbit_s is not None and self.rate_kbit_s <= 0:
            raise EdgesimError(f"netem rate_kbit_s must be > 0 or None, got {self.rate_kbit_s}")

    def tc_arguments(self, interface: str = DEFAULT_INTERFACE) -> list[str]:
        """``tc`` arguments that install (or replace) this qdisc as the root of ``interface``."""
        arguments = ["qdisc", "replace", "dev", interface, "root", "netem"]
        arguments += ["delay", f"{self.latency_ms:g}ms"]
        if self.jitter_ms:
            arguments.append(f"{self.jitter_ms:g}ms")
        if self.loss_rate:
            arguments += ["loss", f"{self.loss_rate * 100:g}%"]
        if self.rate_kbit_s is not None:
            arguments += ["rate", f"{self.rate_kbit_s:g}kbit"]
        return arguments


_support_lock = threading.Lock()
_support_cache: dict[str, NetemSupport] = {}
_warned = False


def default_helper_image(client: docker.DockerClient) -> str:
    """An image with ``tc`` (iproute2): the project's Debian base, made offline if missing."""
    from pytest_edgesim.docker.debian_base import ensure_base_image

    return ensure_base_image(client)


def netem_support(
    client: docker.DockerClient, helper_image: str | None = None, *, refresh: bool = False
) -> NetemSupport:
    """Whether this engine's kernel runs netem, probed once per engine and helper image.

    The probe adds a netem qdisc to the loopback of a helper container with its own network
    namespace (``--network none``), so it touches no other container.
    """
    key = f"{client.api.base_url}|{helper_image or ''}"
    with _support_lock:
        if not refresh and key in _support_cache:
            return _support_cache[key]
        try:
            image = helper_image or default_helper_image(client)
            _run_helper(
                client, image, ["tc", *NetemSettings(latency_ms=1).tc_arguments("lo")], "none"
            )
        except NetemError as error:
            support = NetemSupport(False, f"the kernel has no netem qdisc ({error.output})")
        except EdgesimError as error:
            support = NetemSupport(False, f"no helper image with tc: {error}")
        else:
            support = NetemSupport(True, "tc netem works in a helper with NET_ADMIN")
        _support_cache[key] = support
        return support


def warn_unavailable_once(support: NetemSupport) -> None:
    """Say once per process that netem is missing and the proxy stands in for it."""
    global _warned
    if _warned:
        return
    _warned = True
    warnings.warn(
        f"tc netem is unavailable: {support.reason}; impairment falls back to an "
        "in-process TCP proxy (see pytest_edgesim.docker.proxy)",
        NetemUnavailableWarning,
        stacklevel=3,
    )


def apply_netem(
    client: docker.DockerClient,
    container_id: str,
    settings: NetemSettings,
    *,
    interface: str = DEFAULT_INTERFACE,
    helper_image: str | None = None,
) -> None:
    """Install ``settings`` on the egress of ``interface`` in the container's namespace."""
    image = helper_image or default_helper_image(client)
    _run_helper(
        client, image, ["tc", *settings.tc_arguments(interface)], f"container:{container_id}"
    )


def clear_netem(
    client: docker.DockerClient,
    container_id: str,
    *,
    interface: str = DEFAULT_INTERFACE,
    helper_image: str | None = None,
) -> None:
    """Remove the root qdisc from ``interface`` (back to the default); a no-op if none is set."""
    image = helper_image or default_helper_image(client)
    command = ["sh", "-c", f"tc qdisc del dev {interface} root 2>/dev/null || true"]
    with contextlib.suppress(NotFound):
        _run_helper(client, image, command, f"container:{container_id}")


def _run_helper(
    client: docker.DockerClient, image: str, command: list[str], network_mode: str
) -> str:
    """Run ``command`` in a labelled helper with NET_ADMIN; return its output or raise."""
    try:
        helper = client.containers.create(
            image,
            command=command,
            name=resource_name("netem-helper"),
            labels=resource_labels("netem-helper"),
            network_mode=network_mode,
            cap_add=["NET_ADMIN"],
            entrypoint=[],
            **container_limits(),
        )
    except ImageNotFound as error:
        raise EdgesimError(f"netem helper image {image} is missing: {error}") from error
    except APIError as error:
        raise EdgesimError(f"cannot create a netem helper from {image}: {error}") from error
    try:
        helper.start()
        status = helper.wait(timeout=_HELPER_TIMEOUT_S)
        output = helper.logs().decode(errors="replace").strip()
    except (DockerException, OSError) as error:
        raise EdgesimError(f"netem helper {' '.join(command)} failed to run: {error}") from error
    finally:
        with contextlib.suppress(NotFound, APIError):
            helper.remove(force=True)
    if status.get("StatusCode") != 0:
        raise NetemError(" ".join(command), output)
    return output
