// SPDX-License-Identifier: Apache-2.0
// A Node module loader for @cloudflare/sandbox outside Workers: it maps
// `cloudflare:workers` to workers-stub.mjs, and treats @cloudflare/containers
// as the bundler it was written for would: its files are ES modules (its
// package.json does not say so; Node 20 detects it, Node 18 does not), and
// its extensionless relative imports mean "./x.js" or "./x/index.js".
const esm = (r) =>
	r.url.includes('/node_modules/@cloudflare/containers/') ? { ...r, format: 'module' } : r;

export async function resolve(specifier, context, next) {
	if (specifier === 'cloudflare:workers')
		return { url: new URL('./workers-stub.mjs', import.meta.url).href, shortCircuit: true };
	try {
		return esm(await next(specifier, context));
	} catch (e) {
		if (e.code !== 'ERR_MODULE_NOT_FOUND' && e.code !== 'ERR_UNSUPPORTED_DIR_IMPORT')
			throw e;
		if (!specifier.startsWith('./') && !specifier.startsWith('../'))
			throw e;
		for (const suffix of ['.js', '/index.js']) {
			try {
				return esm(await next(specifier + suffix, context));
			} catch {
				// the next candidate
			}
		}
		throw e;
	}
}
