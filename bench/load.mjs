// The load generator, in its own process so it does not share a CPU budget with the server under test.
//   node bench/load.mjs '<json: { url, cookies, connections, duration | amount }>'
// Prints one JSON line: requests, rps, latency percentiles, errors and non-2xx responses.
import autocannon from 'autocannon';

const { url, cookies = [], connections = 50, duration, amount, rate } = JSON.parse(process.argv[2]);
let next = 0;
const result = await autocannon({
  url,
  connections,
  ...(amount ? { amount } : { duration }),
  ...(rate ? { overallRate: rate } : {}),
  requests: [
    {
      setupRequest(request) {
        if (cookies.length > 0) {
          // Spread the load over the pool of sessions, as many users would.
          request.headers = { ...request.headers, cookie: cookies[next++ % cookies.length] };
        }
        return request;
      },
    },
  ],
});
process.stdout.write(
  `${JSON.stringify({
    requests: result.requests.total,
    rps: result.requests.average,
    seconds: result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  })}\n`,
);
