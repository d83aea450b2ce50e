// Prometheus metrics of the session store, from koa-kv-session's tracing channel (docs/operations.md).
import diagnosticsChannel from 'node:diagnostics_channel';
import client from 'prom-client';

/** Store latency per operation, backend and outcome; compare-and-set conflicts; failed calls. */
export function storeMetrics(register = client.register) {
  const duration = new client.Histogram({
    name: 'koa_kv_session_store_duration_seconds',
    help: 'Duration of koa-kv-session store calls, retries included',
    labelNames: ['operation', 'backend', 'outcome'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [register],
  });
  const conflicts = new client.Counter({
    name: 'koa_kv_session_store_conflicts_total',
    help: 'Writes another write came before (retried on the fresher record)',
    labelNames: ['backend'],
    registers: [register],
  });
  const failures = new client.Counter({
    name: 'koa_kv_session_store_failures_total',
    help: 'Store calls that failed (a 503 when a request made them)',
    labelNames: ['operation', 'backend'],
    registers: [register],
  });
  const started = new WeakMap();
  const channel = diagnosticsChannel.tracingChannel('koa-kv-session:store');
  const handlers = {
    start: (context) => started.set(context, process.hrtime.bigint()),
    error: (context) => failures.inc({ operation: context.operation, backend: context.backend }),
    asyncEnd: (context) => {
      const seconds = Number(process.hrtime.bigint() - started.get(context)) / 1e9;
      duration.observe(
        {
          operation: context.operation,
          backend: context.backend,
          outcome: context.outcome ?? (context.error ? 'error' : 'done'),
        },
        seconds,
      );
      if (context.outcome === 'conflict') conflicts.inc({ backend: context.backend });
    },
  };
  channel.subscribe(handlers);
  return () => channel.unsubscribe(handlers);
}
