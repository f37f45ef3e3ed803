"""OpenTelemetry traces, configured by the standard OTEL_* variables and off until one
names an exporter.

`OTEL_TRACES_EXPORTER` is `otlp` (HTTP/protobuf to `OTEL_EXPORTER_OTLP_ENDPOINT`),
`console` or `none`; unset, it is `otlp` when an OTLP endpoint is set and `none`
otherwise, so that a service nobody configured sends nothing anywhere. The SDK
itself reads `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`
and the OTLP exporter's own variables. While tracing is off nothing is recorded:
the instrumentation asks `tracer()` and gets None.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Span, Status, StatusCode, Tracer

# The SDK is imported when an exporter is named: a process that traces nothing (a CLI
# command, a test run) does not pay for it.
if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

INSTRUMENTATION_NAME = "{{ cookiecutter.package_name }}"
EXPORTERS = ("otlp", "console", "none")
OTLP_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
PROTOCOLS = ("OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
SHIPPED_PROTOCOL = "http/protobuf"

_provider: TracerProvider | None = None
_tracer: Tracer | None = None
# Set around work that would only be noise in traces, such as the replica checks.
_untraced: ContextVar[bool] = ContextVar("untraced", default=False)


class TracingSettingError(ValueError):
    """An OTEL_* variable asks for what the service cannot do; the message names it."""


def exporter_names(environ: Mapping[str, str]) -> list[str]:
    """The exporters the environment asks for; empty when tracing is off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    given = environ.get("OTEL_TRACES_EXPORTER")
    if given is None:
        return ["otlp"] if any(environ.get(name) for name in OTLP_ENDPOINTS) else []
    names = [name.strip().lower() for name in given.split(",") if name.strip()]
    unknown = [name for name in names if name not in EXPORTERS]
    if unknown:
        raise TracingSettingError(
            f"OTEL_TRACES_EXPORTER: {', '.join(unknown)} is not one of {', '.join(EXPORTERS)}"
        )
    return [name for name in names if name != "none"]


def provider_from_environment(
    default_service_name: str, environ: Mapping[str, str] = os.environ
) -> TracerProvider | None:
    """A provider exporting where the environment says, or None when tracing is off."""
    names = exporter_names(environ)
    if not names:
        return None
    for variable in PROTOCOLS:
        protocol = environ.get(variable, SHIPPED_PROTOCOL).strip()
        if "otlp" in names and protocol != SHIPPED_PROTOCOL:
            raise TracingSettingError(
                f"{variable}={protocol}: the service exports OTLP over {SHIPPED_PROTOCOL} "
                "(port 4318); point OTEL_EXPORTER_OTLP_ENDPOINT at a collector's HTTP receiver"
            )
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )

    # Resource.create adds OTEL_RESOURCE_ATTRIBUTES.
    service_name = environ.get("OTEL_SERVICE_NAME") or default_service_name
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    if "otlp" in names:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=traces_endpoint(environ))
        provider.add_span_processor(BatchSpanProcessor(exporter))
    if "console" in names:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    return provider


def traces_endpoint(environ: Mapping[str, str]) -> str | None:
    """Where OTLP spans go, as the specification composes it; None: the exporter's default."""
    if traces := environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return traces
    if base := environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return base.rstrip("/") + "/v1/traces"
    return None


def use_provider(provider: TracerProvider | None) -> None:
    """Trace into `provider` from now on, or nothing with None (tests set their own)."""
    global _provider, _tracer
    _provider = provider
    _tracer = None if provider is None else provider.get_tracer(INSTRUMENTATION_NAME)


def configure_tracing(default_service_name: str = INSTRUMENTATION_NAME) -> TracerProvider | None:
    """Trace as the environment says; the provider in use, if any."""
    use_provider(provider_from_environment(default_service_name))
    return _provider


def provider() -> TracerProvider | None:
    return _provider


def tracer() -> Tracer | None:
    """The tracer the instrumentation uses, or None while tracing is off or suppressed."""
    return None if _untraced.get() else _tracer


@contextmanager
def untraced() -> Iterator[None]:
    """No spans for what runs in the block (and in the tasks it starts)."""
    token = _untraced.set(True)
    try:
        yield
    finally:
        _untraced.reset(token)


def shutdown_tracing() -> None:
    """Send the spans still queued, then stop."""
    if _provider is not None:
        _provider.shutdown()


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[Span | None]:
    """A span around the block, current within it, while tracing is on; None otherwise.

    An exception marks it failed by its type alone: messages can quote a row's values.
    """
    current_tracer = tracer()
    if current_tracer is None:
        yield None
        return
    with current_tracer.start_as_current_span(
        name, attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as current:
        try:
            yield current
        except BaseException as error:
            failed(current, type(error).__name__)
            raise


def failed(current: Span, error_type: str) -> None:
    current.set_attribute("error.type", error_type)
    current.set_status(Status(StatusCode.ERROR, error_type))
