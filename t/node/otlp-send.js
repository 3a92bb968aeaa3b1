// Sends one trace, one metric and one log record with the OpenTelemetry
// JS SDK's OTLP/HTTP protobuf exporters (pinned in package-lock.json), as
// an instrumented application would: how t/17-otlp.t gets real OTLP bodies.
//
//   node t/node/otlp-send.js http://127.0.0.1:PORT [gzip|none]
//
// Prints {"traceId":"…","spanId":"…"} of the span it sent.

'use strict';

const { resourceFromAttributes } = require('@opentelemetry/resources');
const { BasicTracerProvider, SimpleSpanProcessor } =
    require('@opentelemetry/sdk-trace-base');
const { LoggerProvider, SimpleLogRecordProcessor } =
    require('@opentelemetry/sdk-logs');
const { MeterProvider, PeriodicExportingMetricReader } =
    require('@opentelemetry/sdk-metrics');
const { OTLPTraceExporter } =
    require('@opentelemetry/exporter-trace-otlp-proto');
const { OTLPLogExporter } = require('@opentelemetry/exporter-logs-otlp-proto');
const { OTLPMetricExporter } =
    require('@opentelemetry/exporter-metrics-otlp-proto');

async function main(base, compression) {
    const resource = resourceFromAttributes({ 'service.name': 'checkout' });
    const opt = (path) => ({ url: base + path, compression });

    const tracer = new BasicTracerProvider({
        resource,
        spanProcessors: [
            new SimpleSpanProcessor(new OTLPTraceExporter(opt('/v1/traces'))),
        ],
    });
    const span = tracer.getTracer('shop').startSpan('GET /cart',
        { attributes: { 'http.status_code': 200 } });
    span.end();
    await tracer.forceFlush();

    const logs = new LoggerProvider({
        resource,
        processors: [
            new SimpleLogRecordProcessor({
                exporter: new OTLPLogExporter(opt('/v1/logs')),
            }),
        ],
    });
    logs.getLogger('shop').emit({
        severityNumber: 17, severityText: 'ERROR', body: 'payment failed',
    });
    await logs.forceFlush();

    const meters = new MeterProvider({
        resource,
        readers: [new PeriodicExportingMetricReader({
            exporter: new OTLPMetricExporter(opt('/v1/metrics')),
            exportIntervalMillis: 60000,
        })],
    });
    meters.getMeter('shop').createCounter('orders').add(5);
    await meters.forceFlush();

    await Promise.all([tracer.shutdown(), logs.shutdown(), meters.shutdown()]);

    const ctx = span.spanContext();
    process.stdout.write(JSON.stringify({ traceId: ctx.traceId,
                                          spanId: ctx.spanId }) + '\n');
}

main(process.argv[2], process.argv[3] || 'none').catch((e) => {
    process.stderr.write('ERROR: ' + (e && e.stack ? e.stack : e) + '\n');
    process.exit(1);
});
