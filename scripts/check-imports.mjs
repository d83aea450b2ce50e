// `npm run lint` part: fails on an import cycle in src/ (type-only imports count too), and on an
// import across the line between the core and the backends:
//   - src/backends/ may import only its own files and the leaves errors.ts and record.ts;
//   - the core reaches backends only through contract.ts, closing.ts, registry.ts, keyv.ts and handed-in.ts
//     (a backend's own file is loaded by the registry, or for a store handed in by handed-in.ts, lazily);
// and on a chain of static imports from index.ts longer than MAX_DEPTH modules (a lazily loaded backend starts a chain
// of its own). Types count: a type is imported from the module that defines it, never through a hub.
import madge from 'madge';

const LEAVES = new Set(['errors.ts', 'record.ts']);
const DOORS = new Set([
  'backends/contract.ts',
  'backends/closing.ts',
  'backends/registry.ts',
  'backends/keyv.ts',
  'backends/handed-in.ts',
]);

const MAX_DEPTH = 8;

const result = await madge('src/', { fileExtensions: ['ts'], tsConfig: 'tsconfig.json' });
const problems = result.circular().map((cycle) => `import cycle: ${[...cycle, cycle[0]].join(' -> ')}`);
for (const [file, imports] of Object.entries(result.obj())) {
  const inBackends = file.startsWith('backends/');
  for (const imported of imports) {
    const target = imported.startsWith('backends/');
    if (inBackends && !target && !LEAVES.has(imported))
      problems.push(
        `upward import: ${file} -> ${imported} (backends may import only errors.ts and record.ts outside backends/)`,
      );
    if (!inBackends && target && !DOORS.has(imported))
      problems.push(`core import of a backend's own file: ${file} -> ${imported} (go through backends/registry.ts)`);
  }
}
const staticImports = await madge('src/', {
  fileExtensions: ['ts'],
  tsConfig: 'tsconfig.json',
  detectiveOptions: { ts: { skipAsyncImports: true }, es6: { skipAsyncImports: true } },
});
const graph = staticImports.obj();
const chains = new Map();
/** The longest chain of static imports from `file` (it has no cycles: checked above). */
const longest = (file) => {
  if (!chains.has(file)) {
    let best = [file];
    for (const next of graph[file] ?? []) {
      const chain = longest(next);
      if (chain.length + 1 > best.length) best = [file, ...chain];
    }
    chains.set(file, best);
  }
  return chains.get(file);
};
const deepest = problems.length > 0 ? [] : longest('index.ts');
if (deepest.length > MAX_DEPTH)
  problems.push(`imports ${deepest.length} modules deep (at most ${MAX_DEPTH}): ${deepest.join(' -> ')}`);
if (problems.length > 0) {
  process.stderr.write(`${problems.join('\n')}\n`);
  process.exit(1);
}
process.stdout.write(
  `imports: ${Object.keys(result.obj()).length} files in src/, no cycles, no imports across the core/backends line, ` +
    `${deepest.length} modules deep at most (budget ${MAX_DEPTH})\n`,
);
