// Preloaded with `node --import` into a process under test (plain Node, no tsx): when the process
// exits, the file named by $HOIST_MODULE_LOG lists, one URL a line, every module it loaded. ES
// modules (and CommonJS ones that an import reached) come from a loader hook
// (module-log-hooks.mjs, which runs on Node's hooks thread); CommonJS modules that require() loaded
// come from the require cache, since require() does not pass through Node 20's loader hooks.
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { pathToFileURL } from 'node:url';

const out = process.env.HOIST_MODULE_LOG;
if (!out) throw new Error('module-log.mjs: set HOIST_MODULE_LOG to the file to write');
register(new URL('./module-log-hooks.mjs', import.meta.url), { data: { out } });
const cache = createRequire(import.meta.url).cache;
process.on('exit', () => {
  const urls = Object.keys(cache).map((path) => `${pathToFileURL(path).href}\n`);
  appendFileSync(out, urls.join(''));
});
