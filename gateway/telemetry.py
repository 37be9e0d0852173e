"""OpenTelemetry traces: a server span per request, client spans from the instrumented httpx client.

Span attributes are chosen, never copied wholesale: method, path (no query string), status, the
route that answered and the request id. No header, query, body, prompt or key is ever recorded.
The tracer provider is built per gateway (no global provider is installed).
"""

from __future__ import annotations

import importlib.util
import sys

from opentelemetry import propagate, trace
from opentelemetry.metrics import MeterProvider, NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config import Problem, TelemetryConfig
from gateway.context import request_context
from gateway.state import runtime_of

OTLP_MODULE = "opentelemetry.exporter.otlp.proto.http.trace_exporter"
OTLP_METRICS_MODULE = "opentelemetry.exporter.otlp.proto.http.metric_exporter"


def exporter_problem(config: TelemetryConfig) -> Problem | None:
    """Why the configured exporter cannot run here, if it cannot."""
    if config.exporter != "otlp":
        return None
    try:
        found = importlib.util.find_spec(OTLP_MODULE) is not None
    except ModuleNotFoundError:
        found = False
    return (
        None
        if found
        else Problem("telemetry.exporter", "'otlp' needs the opentelemetry-exporter-otlp package installed")
    )


def build_tracer_provider(config: TelemetryConfig) -> TracerProvider:
    if config.exporter == "none":
        return trace.NoOpTracerProvider()
    provider = SdkTracerProvider(resource=Resource.create({"service.name": config.service_name}))
    provider.add_span_processor(BatchSpanProcessor(_exporter(config)))
    return provider


def _exporter(config: TelemetryConfig) -> SpanExporter:
    if config.exporter == "console":
        return ConsoleSpanExporter(out=sys.stdout)
    module = importlib.import_module(OTLP_MODULE)
    exporter: SpanExporter = module.OTLPSpanExporter(endpoint=config.otlp_endpoint)
    return exporter


async def redact_client_span(span: Span, request: object) -> None:
    """Request hook of the httpx instrumentation: the upstream URL is recorded without its query.

    The instrumentation redacts only the query parameters it knows; a key sent as ``?key=...`` to
    some upstream must not reach a trace backend either.
    """
    attributes = getattr(span, "attributes", None) or {}
    for name in ("url.full", "http.url"):
        value = attributes.get(name)
        if isinstance(value, str) and "?" in value:
            span.set_attribute(name, value.split("?", 1)[0])


def shutdown_tracer_provider(provider: TracerProvider) -> None:
    if isinstance(provider, SdkTracerProvider):
        provider.shutdown()


def build_meter_provider(config: TelemetryConfig) -> MeterProvider:
    """Metrics go where traces go: nowhere, the console, or OTLP, every ``metrics_interval`` s."""
    if config.exporter == "none":
        return NoOpMeterProvider()
    exporter: MetricExporter
    if config.exporter == "console":
        exporter = ConsoleMetricExporter(out=sys.stdout)
    else:
        exporter = importlib.import_module(OTLP_METRICS_MODULE).OTLPMetricExporter(
            endpoint=config.otlp_endpoint
        )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=config.metrics_interval * 1000)
    resource = Resource.create({"service.name": config.service_name})
    return SdkMeterProvider(metric_readers=[reader], resource=resource)


def shutdown_meter_provider(provider: MeterProvider) -> None:
    if isinstance(provider, SdkMeterProvider):
        provider.shutdown()


class TracingMiddleware:
    """Opens the server span of each request; continues a trace from an incoming ``traceparent``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracer = runtime_of(scope).tracer if scope["type"] == "http" else None
        if tracer is None:
            await self.app(scope, receive, send)
            return
        parent = propagate.extract(Headers(scope=scope))
        method = scope["method"]
        attributes = {
            "http.request.method": method,
            "url.path": scope["path"],
            "url.scheme": scope.get("scheme", "http"),
        }
        with tracer.start_as_current_span(
            method, context=parent, kind=SpanKind.SERVER, attributes=attributes
        ) as span:
            status = 0

            async def send_and_record(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await self.app(scope, receive, send_and_record)
            finally:
                context = request_context(scope)
                span.set_attribute("http.response.status_code", status)
                span.set_attribute("gateway.route", context.route)
                span.set_attribute("gateway.request_id", context.request_id)
                if status >= 500 or not context.response_complete:
                    span.set_status(Status(StatusCode.ERROR))
