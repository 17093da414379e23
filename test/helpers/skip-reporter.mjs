/**
 * A node:test reporter that sits beside the normal one (scripts/test.sh passes both): it writes one
 * tab-separated line per skipped test or suite (`skip  FILE  NAME  REASON`) and, at the end, the counts
 * (`total  PASSED  FAILED  SKIPPED`, tests only, not suites), for scripts/test.sh to print and judge, and
 * one `file  MS  FILE` line per test file: the sum of its top-level tests' and suites' durations (a file's
 * tests run one after another, so this is its running time without the process start-up).
 * Plain JavaScript: reporters are loaded before any TypeScript loader could help.
 */
export default async function* skipReporter(source) {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  const clean = (text) => String(text).replace(/[\t\n]+/g, ' ');
  const fileMs = new Map();
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const data = event.data;
    if (data.nesting === 0 && data.file !== undefined) {
      fileMs.set(data.file, (fileMs.get(data.file) ?? 0) + (data.details?.duration_ms ?? 0));
    }
    const suite = data.details?.type === 'suite';
    if (data.skip !== undefined && data.skip !== false) {
      skipped++;
      const reason = data.skip === true ? '(no reason given)' : data.skip;
      yield `skip\t${clean(data.file ?? '?')}\t${clean(data.name)}\t${clean(reason)}\n`;
      continue;
    }
    if (data.todo !== undefined && data.todo !== false) continue;
    if (event.type === 'test:pass') {
      if (!suite) passed++;
    } else if (!suite || data.details?.error?.failureType !== 'subtestsFailed') {
      failed++;
    }
  }
  for (const [file, ms] of fileMs) yield `file\t${Math.round(ms)}\t${clean(file)}\n`;
  yield `total\t${passed}\t${failed}\t${skipped}\n`;
}
