// Renders benchmark results as a Markdown table and an SVG bar chart of the ratios to the limit.

const fmt = (n, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '-');

export function renderMarkdown(results) {
  const lines = [];
  const m = results.machine;
  lines.push(
    `Benchmark (${results.mode}, ${results.date.slice(0, 10)}): ${m.cpus} x ${m.cpuModel}, ${m.memoryGiB} GiB, Node ${m.node}, Redis ${m.redis} on loopback; autocannon with ${results.config.connections} connections in its own process, ${results.config.rounds} interleaved rounds of ${results.config.duration} s, medians.`,
  );
  lines.push('');
  const before = results.previous?.ratios ?? {};
  lines.push(
    `| scenario | contender | req/s | x limit | x limit before${results.previous ? ` (${results.previous.date.slice(0, 10)})` : ''} | server CPU us/req | CPU over limit | Redis CPU us/req | store round trips/req | Redis commands/req | p99 ms |`,
  );
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const [id, scenario] of Object.entries(results.scenarios)) {
    for (const [name, c] of Object.entries(scenario.contenders)) {
      const cmds = Object.entries(c.commands)
        .map(([k, v]) => `${k} ${fmt(v, 2)}`)
        .join(', ');
      lines.push(
        `| ${scenario.title} | ${name}${name === scenario.limit ? ' (limit)' : ''} | ${fmt(c.rps)} | ${fmt(c.ratio, 2)} | ${fmt(before[id]?.[name], 2)} | ${fmt(c.cpuUs)} | ${fmt(c.cpuOverLimitUs)} | ${fmt(c.redisCpuUs, 1)} | ${fmt(c.roundTripsPerRequest, 2)} | ${fmt(c.commandsPerRequest, 2)}${cmds ? ` (${cmds})` : ''} | ${fmt(c.p99)} |`,
      );
    }
  }
  lines.push('');
  lines.push(
    'Redis commands include those a script runs inside Redis (INFO commandstats counts them); round trips subtract the GET and SET of our compare-and-set script. Server CPU is the server process\'s user + system time over the run, per request; Redis CPU is the Redis server\'s (INFO cpu), per request. "Before" is the ratio in the previous run of the same mode (the results file this run replaced).',
  );
  lines.push('');
  const large = results.large?.scenarios ?? {};
  if (Object.keys(large).length > 0) {
    lines.push(
      `With ${results.large.sessions.toLocaleString('en')} live sessions in the store (requests still spread over ${results.config.pool.toLocaleString('en')}), 3 rounds:`,
    );
    lines.push('');
    lines.push('| scenario | contender | req/s | x limit | x limit with the pool alone |');
    lines.push('|---|---|---:|---:|---:|');
    for (const [id, names] of Object.entries(large)) {
      for (const [name, c] of Object.entries(names))
        lines.push(
          `| ${results.scenarios[id].title} | ${name} | ${fmt(c.rps)} | ${fmt(c.ratio, 2)} | ${fmt(c.ratioWithPool, 2)} |`,
        );
    }
    lines.push('');
  }
  for (const [name, marks] of Object.entries(results.rss)) {
    lines.push(
      `RSS of ${name} under (c): ${Object.entries(marks)
        .map(([n, rss]) => `${Number(n).toLocaleString('en')} requests: ${fmt(rss / 1048576, 1)} MiB`)
        .join('; ')}.`,
    );
  }
  lines.push('');
  lines.push(
    '| codec | session | bytes | encode ops/s | decode ops/s | Dates kept | base64 out + in, us | header + bytes Buffer, us |',
  );
  lines.push('|---|---|---:|---:|---:|---|---:|---:|');
  const us = (value) => (value === undefined ? '-' : String(value));
  for (const row of results.codec) {
    lines.push(
      `| ${row.format} | ${row.size} | ${row.bytes} | ${row.encodeOps.toLocaleString('en')} | ${row.decodeOps.toLocaleString('en')} | ${row.keepsDates ? 'yes' : 'no'} | ${us(row.base64Us)} | ${us(row.bufferFrameUs)} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export function renderChart(results) {
  const rows = [];
  for (const [id, scenario] of Object.entries(results.scenarios)) {
    for (const [name, c] of Object.entries(scenario.contenders))
      if (name !== scenario.limit)
        rows.push({ label: `(${id}) ${name}`, ratio: c.ratio, ours: name.startsWith('kv-') });
  }
  const barHeight = 18;
  const gap = 6;
  const left = 230;
  const width = 760;
  const scale = (width - left - 60) / 1.2;
  const height = 50 + rows.length * (barHeight + gap);
  const esc = (text) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">Throughput as a fraction of the limit (raw client / bare Koa), higher is better</text>`,
  ];
  for (const mark of [0, 0.5, 1]) {
    const x = left + mark * scale;
    parts.push(
      `<line x1="${x}" y1="30" x2="${x}" y2="${height - 10}" stroke="#ccc" stroke-dasharray="${mark === 1 ? '0' : '3,3'}"/>`,
    );
    parts.push(`<text x="${x}" y="${height - 1}" text-anchor="middle" fill="#666">${mark}x</text>`);
  }
  rows.forEach((row, i) => {
    const y = 35 + i * (barHeight + gap);
    const w = Math.max(1, Math.min(row.ratio, 1.2) * scale);
    parts.push(`<text x="${left - 8}" y="${y + 13}" text-anchor="end">${esc(row.label)}</text>`);
    parts.push(
      `<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barHeight}" fill="${row.ours ? '#2b7bb9' : '#b0b0b0'}"/>`,
    );
    parts.push(`<text x="${left + w + 4}" y="${y + 13}">${row.ratio.toFixed(2)}x</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
