// A node:test reporter that prints one line per test case, "ok - name" or "not ok - name",
// with the failure under it, so tests/run.sh can count cases across all test kinds.
export default async function* tapReporter(source) {
  for await (const event of source) {
    const d = event.data;
    if (event.type === 'test:pass' && d.details?.type !== 'suite') {
      if (d.skip) yield `ok - ${d.name} # SKIP ${typeof d.skip === 'string' ? d.skip : ''}\n`;
      else yield `ok - ${d.name}\n`;
    } else if (event.type === 'test:fail' && d.details?.type !== 'suite') {
      const err = d.details?.error;
      const cause = err?.cause ?? err;
      const text = String(cause?.stack ?? cause?.message ?? cause).split('\n').slice(0, 12);
      yield `not ok - ${d.name}\n${text.map((l) => `    # ${l}`).join('\n')}\n`;
    } else if (event.type === 'test:diagnostic' && d.nesting === 0) {
      yield `# ${d.message}\n`;
    } else if (event.type === 'test:stderr' || event.type === 'test:stdout') {
      yield d.message.split('\n').filter(Boolean).map((l) => `    | ${l}`).join('\n') + '\n';
    }
  }
}
