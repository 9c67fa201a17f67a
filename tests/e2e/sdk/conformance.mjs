// SPDX-License-Identifier: Apache-2.0
// The real @cloudflare/sandbox SandboxClient against berthd's sandbox
// protocol: node --import ./register.mjs conformance.mjs BASE_URL TOKEN GIT_BASE_URL
// (GIT_BASE_URL: an instance whose image has git and /srv/repo.git, gitroot.sh)
// Prints "  ok   NAME" / "  FAIL NAME" lines; exits with the number of failures.
import { SandboxClient, parseSSEStream, collectFile } from '@cloudflare/sandbox';

const baseUrl = process.argv[2];
const token = process.argv[3];
const gitBaseUrl = process.argv[4];
let failures = 0;
let checks = 0;

function report(name, ok, detail) {
	checks++;
	if (ok) {
		console.log(`  ok   ${name}`);
	} else {
		failures++;
		console.log(`  FAIL ${name}`);
		if (detail !== undefined) console.log(`       ${detail}`);
	}
}

function eq(name, want, got) {
	const w = JSON.stringify(want), g = JSON.stringify(got);
	report(name, w === g, `expected: ${w}\n       actual:   ${g}`);
}

// The call must fail with the SDK's typed error `errName`, code and status.
async function throws(name, errName, code, status, fn) {
	try {
		await fn();
		report(name, false, 'no error was thrown');
	} catch (e) {
		report(name, e.name === errName && e.code === code && e.httpStatus === status,
		       `got ${e.name} ${e.code} ${e.httpStatus}: ${e.message}`);
	}
}

async function events(stream) {
	const out = [];
	for await (const ev of parseSSEStream(stream)) out.push(ev);
	return out;
}

// berthd's API on TCP wants its bearer token: the SDK sends default headers with every call.
const clientOf = (url) => new SandboxClient({
	baseUrl: url,
	retryTimeoutMs: 30000,
	defaultHeaders: token ? { Authorization: `Bearer ${token}` } : undefined,
});
const client = clientOf(baseUrl);
const S = 'conf';

console.log('-- utilities and sessions');
eq('ping', 'pong', await client.utils.ping());
report('version', (await client.utils.getVersion()) !== 'unknown');
report('getCommands', (await client.utils.getCommands()).includes('sh'));
const created = await client.utils.createSession({ id: S, env: { GREETING: 'hi there' }, cwd: '/tmp' });
eq('createSession', [true, S], [created.success, created.id]);
await throws('the same session again: SessionAlreadyExistsError', 'SessionAlreadyExistsError',
             'SESSION_ALREADY_EXISTS', 409, () => client.utils.createSession({ id: S }));

console.log('-- commands');
let r = await client.commands.execute('echo "$GREETING"; pwd', S);
eq('execute: stdout, exit code', ['hi there\n/tmp\n', 0, true], [r.stdout, r.exitCode, r.success]);
await client.commands.execute('cd /etc && export ADDED=yes', S);
r = await client.commands.execute('pwd; echo $ADDED', S);
eq('cd and export persist in the session', '/etc\nyes\n', r.stdout);
r = await client.commands.execute('echo $ONE; pwd', S, { env: { ONE: 'only' }, cwd: '/' });
eq("a command's env and cwd", 'only\n/\n', r.stdout);
r = await client.commands.execute('echo "[$ONE]"; pwd', S);
eq('are its own', '[]\n/etc\n', r.stdout);
r = await client.commands.execute('echo oops >&2; exit 7', S);
eq('stderr and a failure', ['oops\n', 7, false], [r.stderr, r.exitCode, r.success]);
r = await client.commands.execute('sleep 10', S, { timeoutMs: 200 });
eq('timeoutMs kills it', 137, r.exitCode);
await throws('an empty command: CommandError', 'CommandError', 'INVALID_COMMAND', 400,
             () => client.commands.execute('', S));
let evs = await events(await client.commands.executeStream('for i in 1 2 3; do echo $i; sleep 0.05; done; exit 2', S));
eq('executeStream: event order', ['start', 'stdout', 'stdout', 'stdout', 'complete'], evs.map((e) => e.type));
eq('executeStream: output and exit code', ['1\n2\n3\n', 2],
   [evs.filter((e) => e.type === 'stdout').map((e) => e.data).join(''), evs.at(-1).exitCode]);

console.log('-- files');
let w = await client.files.writeFile('/workspace/conf/hello.txt', 'héllo ✓\n', S);
eq('writeFile (utf-8)', true, w.success);
let f = await client.files.readFile('/workspace/conf/hello.txt', S);
eq('readFile', ['héllo ✓\n', 'utf-8', false], [f.content, f.encoding, f.isBinary]);
const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
w = await client.files.writeFile('/workspace/conf/bytes.bin', bytes.toString('base64'), S, { encoding: 'base64' });
eq('writeFile (base64)', true, w.success);
f = await client.files.readFile('/workspace/conf/bytes.bin', S);
eq('readFile of binary: base64, detected', [bytes.toString('base64'), 'base64', true],
   [f.content, f.encoding, f.isBinary]);
const file = await collectFile(await client.files.readFileStream('/workspace/conf/bytes.bin', S));
eq('readFileStream + collectFile', [true, bytes.toString('hex')],
   [file.metadata.isBinary, Buffer.from(file.content).toString('hex')]);
const large = Buffer.alloc(5 * 1024 * 1024, 'x');
w = await client.files.writeFile('/workspace/conf/large.txt', large.toString(), S);
eq('writeFile of 5 MiB', true, w.success);
eq('its size', 5 * 1024 * 1024, (await client.files.readFile('/workspace/conf/large.txt', S)).size);
eq('mkdir (recursive)', true, (await client.files.mkdir('/workspace/conf/a/b', S, { recursive: true })).success);
await throws('mkdir of an existing one: FileExistsError', 'FileExistsError', 'FILE_EXISTS', 409,
             () => client.files.mkdir('/workspace/conf/a', S));
eq('exists', [true, false], [(await client.files.exists('/workspace/conf/a/b', S)).exists,
                             (await client.files.exists('/workspace/conf/none', S)).exists]);
const list = await client.files.listFiles('/workspace/conf', S, { recursive: true });
eq('listFiles', ['a', 'a/b', 'bytes.bin', 'hello.txt', 'large.txt'],
   list.files.map((x) => x.relativePath).sort());
eq('renameFile', '/workspace/conf/hi.txt',
   (await client.files.renameFile('/workspace/conf/hello.txt', '/workspace/conf/hi.txt', S)).newPath);
eq('moveFile', true, (await client.files.moveFile('/workspace/conf/hi.txt', '/workspace/conf/a/hi.txt', S)).success);
eq('deleteFile', true, (await client.files.deleteFile('/workspace/conf/a/hi.txt', S)).success);
await throws('readFile of a missing file: FileNotFoundError', 'FileNotFoundError', 'FILE_NOT_FOUND', 404,
             () => client.files.readFile('/workspace/conf/a/hi.txt', S));
await throws("a path above the root: PermissionDeniedError", 'PermissionDeniedError', 'PERMISSION_DENIED', 403,
             () => client.files.readFile('/workspace/../../etc/shadow', S));
await throws('reading a directory: FileSystemError', 'FileSystemError', 'IS_DIRECTORY', 400,
             () => client.files.readFile('/workspace/conf/a', S));

console.log('-- processes');
const p = await client.processes.startProcess('for i in 1 2 3; do echo p$i; sleep 0.1; done', S, { processId: 'p1' });
eq('startProcess', ['p1', true], [p.processId, p.pid > 0]);
evs = await events(await client.processes.streamProcessLogs('p1'));
eq('streamProcessLogs: process_info first, exit last', ['process_info', 'exit'], [evs[0].type, evs.at(-1).type]);
eq('its output', 'p1\np2\np3\n', evs.filter((e) => e.type === 'stdout').map((e) => e.data).join(''));
let info = await client.processes.getProcess('p1');
eq('getProcess: completed', ['completed', 0], [info.process.status, info.process.exitCode]);
eq('getProcessLogs', 'p1\np2\np3\n', (await client.processes.getProcessLogs('p1')).stdout);
await client.processes.startProcess('sleep 30 & sleep 31', S, { processId: 'long' });
eq('listProcesses', ['long', 'p1'], (await client.processes.listProcesses()).processes.map((x) => x.id).sort());
eq('killProcess', true, (await client.processes.killProcess('long')).success);
info = await client.processes.getProcess('long');
eq('killed', 'killed', info.process.status);
r = await client.commands.execute('ps -o args | grep -c "^sleep 3[01]" || true', S);
eq('with its children', '0\n', r.stdout);
await throws('getProcess of none: ProcessNotFoundError', 'ProcessNotFoundError', 'PROCESS_NOT_FOUND', 404,
             () => client.processes.getProcess('nope'));
await client.processes.startProcess('sleep 30', S, { processId: 'k' });
eq('killAllProcesses', 1, (await client.processes.killAllProcesses()).cleanedCount);

console.log('-- ports');
await client.processes.startProcess('sleep 0.3; echo-server --port 9191', S, { processId: 'srv' });
evs = await events(await client.ports.watchPort({ port: 9191, mode: 'http', path: '/', statusMin: 200,
                                                  statusMax: 399, processId: 'srv', interval: 100 }));
eq('watchPort: watching, then ready', ['watching', 'ready'], evs.map((e) => e.type));
await client.processes.killProcess('srv');
await client.processes.startProcess('sleep 0.2; exit 4', S, { processId: 'dies' });
evs = await events(await client.ports.watchPort({ port: 9192, mode: 'tcp', processId: 'dies', interval: 100 }));
eq('watchPort: the process exits first', ['process_exited', 4], [evs.at(-1).type, evs.at(-1).exitCode]);

console.log('-- watch');
await client.files.mkdir('/workspace/conf-w', S, { recursive: true });
const watchStream = await client.watch.watch({ path: '/workspace/conf-w', recursive: true });
await client.commands.execute('touch /workspace/conf-w/new.txt', S);
let seen = null;
for await (const ev of parseSSEStream(watchStream)) {
	if (ev.type === 'event' && ev.path === '/workspace/conf-w/new.txt') {
		seen = ev;
		break;
	}
}
eq('watch: an event for a new file', ['create', false], [seen?.eventType, seen?.isDirectory]);

console.log('-- git');
await throws('checkout without git in the image: GitError', 'GitError', 'GIT_OPERATION_FAILED', 500,
             () => client.git.checkout('https://example.com/org/repo.git', S));
const git = clientOf(gitBaseUrl);
let g = await git.git.checkout('file:///srv/repo.git', S, { branch: 'feature', targetDir: '/workspace/co', depth: 1 });
eq('checkout of a branch, depth 1', [true, 'feature', '/workspace/co'], [g.success, g.branch, g.targetDir]);
eq("the branch's file", 'on feature\n', (await git.files.readFile('/workspace/co/README', S)).content);
eq('one commit', '1\n', (await git.commands.execute('git -C /workspace/co rev-list --count HEAD', S)).stdout);
g = await git.git.checkout('file:///srv/repo.git', S);
eq("no branch: the remote's HEAD, into /workspace/REPO", [true, 'main', '/workspace/repo'],
   [g.success, g.branch, g.targetDir]);
eq('its file', 'on main\n', (await git.files.readFile('/workspace/repo/README', S)).content);
try {
	await git.git.checkout('file:///srv/repo.git', S, { branch: 'nope', targetDir: '/workspace/nb' });
	report('a missing branch: GitBranchNotFoundError', false, 'no error was thrown');
} catch (e) {
	eq('a missing branch: GitBranchNotFoundError, with the branch and repository',
	   ['GitBranchNotFoundError', 404, 'nope', 'file:///srv/repo.git'],
	   [e.name, e.httpStatus, e.branch, e.repository]);
}
await throws('a missing repository: GitRepositoryNotFoundError', 'GitRepositoryNotFoundError',
             'GIT_REPOSITORY_NOT_FOUND', 404, () => git.git.checkout('file:///srv/none.git', S));

console.log('-- the end of a session');
eq('deleteSession', true, (await client.utils.deleteSession(S)).success);

console.log(`  sdk conformance: ${checks - failures}/${checks} checks passed`);
process.exit(failures);
