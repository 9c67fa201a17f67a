// SPDX-License-Identifier: Apache-2.0
// A Node module loader for @cloudflare/sandbox outside Workers: it maps
// `cloudflare:workers` to workers-stub.mjs, and resolves the extensionless
// relative imports of @cloudflare/containers (written for bundlers) as
// "./x.js" or "./x/index.js", as a bundler would.
export async function resolve(specifier, context, next) {
	if (specifier === 'cloudflare:workers')
		return { url: new URL('./workers-stub.mjs', import.meta.url).href, shortCircuit: true };
	try {
		return await next(specifier, context);
	} catch (e) {
		if (e.code !== 'ERR_MODULE_NOT_FOUND' && e.code !== 'ERR_UNSUPPORTED_DIR_IMPORT')
			throw e;
		if (!specifier.startsWith('./') && !specifier.startsWith('../'))
			throw e;
		for (const suffix of ['.js', '/index.js']) {
			try {
				return await next(specifier + suffix, context);
			} catch {
				// the next candidate
			}
		}
		throw e;
	}
}
