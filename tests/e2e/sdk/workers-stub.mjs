// SPDX-License-Identifier: Apache-2.0
// The Workers-only module `cloudflare:workers`, as far as @cloudflare/sandbox's
// client side needs it under Node: the names it imports, with nothing behind
// them (no Durable Object runs here; only SandboxClient is used).
export class DurableObject {
	constructor(ctx, env) {
		this.ctx = ctx;
		this.env = env;
	}
}
export class WorkerEntrypoint {
	constructor(ctx, env) {
		this.ctx = ctx;
		this.env = env;
	}
}
export class RpcTarget {}
export const env = {};
export const tracing = undefined;
export default { DurableObject, WorkerEntrypoint, RpcTarget, env, tracing };
