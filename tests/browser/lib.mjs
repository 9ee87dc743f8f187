// What chat.test.mjs and cluster.test.mjs share: named checks and their
// summary, bounded waits, server processes (start on the `ready:` line,
// SIGTERM stop), psql, the Chromium launch and the page helpers of the web
// client (by data-testid).
//
// Each test is its own node process: begin() names the run once (the prefix
// of its lines: `browser`, `browser-cluster`) and its output folder; check(),
// shot() and finish() report into that run.

import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const TOP = path.resolve(path.dirname(fileURLToPath(import.meta.url)),
	'..', '..');
const CHROMIUM = process.env.BD_CHROMIUM || '/usr/bin/chromium';

// ms scaled by CK_TIMEOUT_MULTIPLIER (an integer >= 1; the sanitizer build
// sets 3), as the C helpers' trun_ms() does.
export function scaled(ms) {
	const k = Number.parseInt(process.env.CK_TIMEOUT_MULTIPLIER ?? '1', 10);
	return ms * (k >= 1 ? k : 1);
}

export const WAIT_MS = scaled(15000);		// one ordinary wait
// streams back to live after a server stops
export const RECOVER_MS = scaled(30000);
// a server's (or nginx's) start or stop
export const SERVER_MS = scaled(20000);
const TOTAL_MS = scaled(240000);		// the whole run (guard())

// ---- the run and its checks -------------------------------------------------

const run = {
	name: 'browser',	// prefix of the run's own lines
	out: null,		// screenshots and logs
	logs: '',		// the summary's line on the logs
	results: [],		// { name, ok }
	shots: [],		// screenshots taken, relative to TOP
	failLogs: [],		// files whose tails a failed check shows
	watchdog: null,
};

// Prints a line.
export function log(...a) {
	console.log(...a);
}

// Names the run (`name`, the prefix of its lines), its output folder `out`
// and the summary's line on where the logs are (`logs`).
export function begin({ name, out, logs }) {
	Object.assign(run, { name, out, logs });
}

// The files whose last lines a failed check shows.
export function showOnFailure(files) {
	run.failLogs = files;
}

class Abort extends Error {}

// The last n lines of a file (or why there are none).
export function tail(file, n = 15) {
	try {
		return fs.readFileSync(file, 'utf8').trimEnd().split('\n')
			.slice(-n);
	} catch (e) {
		return [`(${e.code || e.message})`];
	}
}

// Runs one named check and prints `ok   name (N ms)` or `FAIL name ...` with
// the tails of the showOnFailure() files. A failed check ends the scenario
// (later checks build on it) and counts as one failure. fn may return a
// string: the detail of the ok line.
export async function check(name, fn) {
	const t0 = Date.now();
	try {
		const detail = await fn();
		run.results.push({ name, ok: true });
		log(`ok   ${name} (${Date.now() - t0} ms)` +
			(typeof detail === 'string' ? `: ${detail}` : ''));
	} catch (e) {
		run.results.push({ name, ok: false });
		log(`FAIL ${name} (${Date.now() - t0} ms): ${e && e.stack || e}`);
		for (const f of run.failLogs)
			if (fs.existsSync(f))
				log(`     last lines of ${path.relative(TOP, f)}:\n` +
					tail(f).map((l) => '     | ' + l).join('\n'));
		throw new Abort(name);
	}
}

// Counts a failure that is no check of its own (`run`, `run time`).
export function fail(name) {
	run.results.push({ name, ok: false });
}

// Throws `what` unless cond.
export function assert(cond, what) {
	if (!cond)
		throw new Error(what);
}

// Throws unless a and b are equal as JSON; the message shows both.
export function same(a, b, what) {
	const ja = JSON.stringify(a), jb = JSON.stringify(b);
	if (ja !== jb)
		throw new Error(`${what}:\n  got      ${ja}\n  expected ${jb}`);
}

// Resolves after ms.
export const pause = (ms) => new Promise((r) => setTimeout(r, ms));

// Resolves with pred()'s value once it is truthy; polls every 50 ms and
// throws `timed out after ms ms: what` (what may be a function) at the
// deadline.
export async function until(pred, what, ms = WAIT_MS) {
	const end = Date.now() + ms;
	for (;;) {
		const last = await pred();
		if (last)
			return last;
		if (Date.now() > end) {
			const w = typeof what === 'function' ? await what() : what;
			throw new Error(`timed out after ${ms} ms: ${w}`);
		}
		await pause(50);
	}
}

// Prints the summary (screenshots, logs, failed checks, `name: N passed, M
// failed`); true when every check passed (and there was one).
function summary() {
	const failed = run.results.filter((r) => !r.ok);
	const passed = run.results.length - failed.length;
	if (run.shots.length)
		log(`${run.name}: screenshots in ${path.relative(TOP, run.out)}: ` +
			run.shots.map((s) => path.basename(s)).join(' '));
	log(`${run.name}: ${run.logs}`);
	if (failed.length)
		log(`${run.name}: FAILED: ${failed.map((r) => r.name).join('; ')}`);
	log(`${run.name}: ${passed} passed, ${failed.length} failed`);
	return failed.length === 0 && passed > 0;
}

// Prints the summary and exits: 0 when every check passed, else 1.
export function finish() {
	process.exit(summary() ? 0 : 1);
}

// ---- the run's life ---------------------------------------------------------

// Makes the output folder and removes from it what an earlier run left (the
// entries whose names remove() accepts).
export function cleanOut(remove) {
	fs.mkdirSync(run.out, { recursive: true });
	for (const f of fs.readdirSync(run.out))
		if (remove(f))
			fs.rmSync(path.join(run.out, f), { recursive: true,
				force: true });
}

// A fresh temporary folder (bd-<name>-XXXXXX) for configs and the browser
// profile; guard() removes it.
export function makeTmp() {
	return fs.mkdtempSync(path.join(os.tmpdir(), `bd-${run.name}-`));
}

// Whatever happens, the run's processes go: on SIGINT or SIGTERM kill(),
// `name: interrupted by SIG` and exit 130; on exit kill() and removal of tmp;
// after TOTAL_MS `name: FAIL: the run took over ...`, onTimeout(), the
// summary and exit 1.
export function guard(tmp, kill, onTimeout = kill) {
	const onSignal = (sig) => {
		kill();
		log(`${run.name}: interrupted by ${sig}`);
		process.exit(130);
	};
	process.on('SIGINT', onSignal);
	process.on('SIGTERM', onSignal);
	process.on('exit', () => {
		kill();
		try {
			fs.rmSync(tmp, { recursive: true, force: true });
		} catch (e) {
			// the browser may still be writing its profile
		}
	});
	run.watchdog = setTimeout(() => {
		log(`${run.name}: FAIL: the run took over ${TOTAL_MS} ms; giving up`);
		onTimeout();
		summary();
		process.exit(1);
	}, TOTAL_MS);
}

// Runs body(). A failed check has reported itself and ends it; anything else
// it throws is printed and counts as the failure `run`. Then, in any case,
// stops guard()'s watchdog and awaits cleanup().
export async function attempt(body, cleanup) {
	try {
		await body();
	} catch (e) {
		if (!(e instanceof Abort)) {
			fail('run');
			log(`FAIL ${e && e.stack || e}`);
		}
	} finally {
		clearTimeout(run.watchdog);
		await cleanup();
	}
}

// ---- processes --------------------------------------------------------------

// A TCP port on 127.0.0.1 that was free a moment ago: racy (another
// process may take it before it is used), so only for what cannot report
// the port it bound (nginx). The server binds port 0 itself: see Server.
export function freePort() {
	return new Promise((resolve, reject) => {
		const s = net.createServer();
		s.unref();
		s.on('error', reject);
		s.listen(0, '127.0.0.1', () => {
			const { port } = s.address();
			s.close(() => resolve(port));
		});
	});
}

// A child whose stdout and stderr go to a file (appended); `exited` resolves
// with { code, sig } (or { error }) once it is gone, and `gone` says so.
export function spawnLogged(bin, args, logFile, env) {
	const fd = fs.openSync(logFile, 'a');
	let proc;
	try {
		proc = spawn(bin, args, { stdio: ['ignore', fd, fd], env });
	} finally {
		fs.closeSync(fd);
	}
	proc.exited = new Promise((resolve) => {
		proc.on('exit', (code, sig) => resolve({ code, sig }));
		proc.on('error', (e) => resolve({ code: null, sig: null,
			error: e }));
	});
	proc.gone = false;
	proc.exited.then(() => { proc.gone = true; });
	return proc;
}

// SIGTERM, then waits for the exit (SIGKILL if it takes over SERVER_MS);
// resolves with the exit ({ code, sig }), null if there was no process.
export async function terminate(proc, what) {
	if (!proc || proc.gone)
		return proc ? proc.exited : null;
	proc.kill('SIGTERM');
	let timer;
	const late = new Promise((resolve) => {
		timer = setTimeout(() => resolve(null), SERVER_MS);
	});
	const r = await Promise.race([proc.exited, late]);
	clearTimeout(timer);
	if (!r) {
		proc.kill('SIGKILL');
		await proc.exited;
		throw new Error(`${what} ignored SIGTERM for ${SERVER_MS} ms; killed`);
	}
	return r;
}

// The server (`bin --config config`) with its output appended to logFile,
// between `---- start N` and `---- exit STATUS` lines; `id` names it in
// errors, env is its environment. Give it tcp_port and http_port 0 in the
// config: it binds free ports and names them on its ready line; the first
// start() writes them into the config (so restarts bind the same ones) and
// into `ports`.
export class Server {
	constructor(bin, config, logFile, { id = 'server', env = process.env } = {}) {
		this.id = id;
		this.bin = bin;
		this.config = config;
		this.logFile = logFile;
		this.env = env;
		this.proc = null;
		this.starts = 0;
		this.ports = { tcp: 0, http: 0 };	// as reported, 0 until then
	}

	// Spawns the server; resolves with the addresses of its `ready: tcp A
	// http B` line of this start ({ tcp, http }), polled with a deadline.
	// After the first start, the ports must be the same on every start.
	async start() {
		const ready = await this.spawnReady();
		const port = (a) => Number(/:(\d+)$/.exec(a)?.[1]);
		const got = { tcp: port(ready.tcp), http: port(ready.http) };
		assert(got.tcp > 0 && got.http > 0,
			`${this.id}: no ports in its ready line ${JSON.stringify(ready)}`);
		if (this.ports.tcp || this.ports.http) {
			same(got, { tcp: this.ports.tcp, http: this.ports.http },
				`${this.id}'s ports on start ${this.starts}, ` +
				'those of its first start');
			return ready;
		}
		// Mutated, not replaced: callers may hold this object.
		Object.assign(this.ports, got);
		const cfg = JSON.parse(fs.readFileSync(this.config, 'utf8'));
		cfg.tcp_port = got.tcp;
		cfg.http_port = got.http;
		fs.writeFileSync(this.config, JSON.stringify(cfg, null, 2) + '\n');
		return ready;
	}

	// Spawns it and awaits its ready line (see start()).
	async spawnReady() {
		this.starts++;
		fs.appendFileSync(this.logFile, `---- start ${this.starts}\n`);
		const from = fs.statSync(this.logFile).size;
		const proc = spawnLogged(this.bin, ['--config', this.config],
			this.logFile, this.env);
		this.proc = proc;
		proc.exited.then(({ code, sig, error }) => {
			fs.appendFileSync(this.logFile, `---- exit ` +
				`${error ? error.message : code ?? sig}\n`);
		});
		const fresh = () => fs.readFileSync(this.logFile).subarray(from)
			.toString('utf8');
		const m = await until(() => {
			if (proc.gone)
				throw new Error(`${this.id} exited before its ready ` +
					`line; log ${path.relative(TOP, this.logFile)}:\n` +
					fresh());
			return /^.* INFO ready tcp=(\S+) http=(\S+)$/m.exec(fresh());
		}, `${this.id}: a ready line in ${this.logFile}`, SERVER_MS);
		return { tcp: m[1], http: m[2] };
	}

	// SIGTERM and the exit status (see terminate()).
	async stop() {
		return terminate(this.proc, this.id);
	}

	// SIGKILL, no waiting (the test is dying).
	killNow() {
		if (this.proc && !this.proc.gone)
			this.proc.kill('SIGKILL');
	}

	// The lines of its log that report a sanitizer (ASan, UBSan) finding.
	sanitizerLines() {
		return fs.readFileSync(this.logFile, 'utf8').split('\n')
			.filter((l) => /Sanitizer|runtime error:/.test(l));
	}
}

// One statement through psql on the database db; resolves with its output
// (unaligned, tuples only, trimmed).
export function psql(db, query) {
	return new Promise((resolve, reject) => {
		const p = spawn('psql', ['-X', '-q', '-A', '-t', '-v',
			'ON_ERROR_STOP=1', '-d', db,
			'-c', query], { stdio: ['ignore', 'pipe', 'pipe'] });
		let out = '', err = '';
		const timer = setTimeout(() => p.kill('SIGKILL'), WAIT_MS);
		p.stdout.on('data', (d) => { out += d; });
		p.stderr.on('data', (d) => { err += d; });
		p.on('error', reject);
		p.on('close', (code) => {
			clearTimeout(timer);
			if (code === 0)
				resolve(out.trim());
			else
				reject(new Error(`psql failed (${code}): ${err.trim()}`));
		});
	});
}

// ---- the browser --------------------------------------------------------------

// Headless Chromium (BD_CHROMIUM, default /usr/bin/chromium) with a fresh
// profile in profileDir; resolves with its persistent context.
export function launchBrowser(profileDir) {
	return chromium.launchPersistentContext(profileDir, {
		executablePath: CHROMIUM,
		headless: true,
		viewport: { width: 1280, height: 800 },
		args: ['--no-sandbox', '--disable-gpu', '--disable-quic',
			'--no-first-run', '--disable-background-networking',
			'--disable-component-update', '--disable-sync'],
		timeout: WAIT_MS * 2,
	});
}

// Makes every page of ctx count its EventSource objects, their opens and
// errors (a blip must be bridged by the browser's own reconnect of the same
// one) and note every seq that arrives twice on the wire (none may, except
// after a reset). Call before the pages are made.
export function countStreams(ctx) {
	return ctx.addInitScript(() => {
		const Base = window.EventSource;
		const seen = new Set();
		window.__streamsMade = 0;
		window.__streamOpens = 0;
		window.__streamErrors = 0;
		window.__dupSeqs = [];
		window.EventSource = class extends Base {
			constructor(...a) {
				super(...a);
				window.__streamsMade++;
				this.addEventListener('open', () => {
					window.__streamOpens++;
				});
				this.addEventListener('error', () => {
					window.__streamErrors++;
				});
				this.addEventListener('message', (ev) => {
					const m = JSON.parse(ev.data);
					const k = m.room + '/' + m.seq;
					if (seen.has(k))
						window.__dupSeqs.push(k);
					seen.add(k);
				});
				this.addEventListener('reset', () => seen.clear());
			}
		};
	});
}

// A page's countStreams() counters: { made, opens, errors, dups }.
export function streamCounters(page) {
	return page.evaluate(() => ({
		made: window.__streamsMade, opens: window.__streamOpens,
		errors: window.__streamErrors, dups: window.__dupSeqs,
	}));
}

// A new page of ctx for `who`: WAIT_MS as its default timeout, its uncaught
// errors pushed to pageErrors as `who: error`.
export async function openPage(ctx, who, pageErrors) {
	const p = await ctx.newPage();
	p.setDefaultTimeout(WAIT_MS);
	p.on('pageerror', (e) => pageErrors.push(`${who}: ${e}`));
	return p;
}

// ---- page helpers (the web client's data-testid attributes) -----------------

// The CSS selector of a data-testid.
export const tid = (id) => `[data-testid="${id}"]`;

// The session id the page keeps in sessionStorage.
export function sessionOf(page) {
	return page.evaluate(() => {
		const v = JSON.parse(sessionStorage.getItem('babydiscord.session'));
		return v && v.session;
	});
}

// The messages a page shows, in DOM order: [{ seq, user, content }].
export function pageMessages(page) {
	return page.$$eval(`${tid('messages')} li[data-testid="message"]`,
		(ls) => ls.map((l) => ({
			seq: Number(l.dataset.seq),
			user: l.dataset.user,
			content: l.querySelector('[data-testid="message-content"]')
				.textContent,
		})));
}

// Resolves with pageMessages() once the page shows every one of contents;
// the timeout's message tells what it shows.
export async function waitMessages(page, who, contents, ms = WAIT_MS) {
	try {
		return await until(async () => {
			const m = await pageMessages(page);
			const have = new Set(m.map((x) => x.content));
			return contents.every((c) => have.has(c)) ? m : null;
		}, `${who}'s page shows ${JSON.stringify(contents)}`, ms);
	} catch (e) {
		const m = await pageMessages(page).catch(() => []);
		e.message += `; it shows ${JSON.stringify(m)}`;
		throw e;
	}
}

// The page's stream indicator: live, reconnecting, ...
export async function streamState(page) {
	return page.getAttribute(tid('stream-status'), 'data-state');
}

// Resolves once the stream indicator says st.
export async function waitStream(page, who, st, ms = WAIT_MS) {
	await until(async () => (await streamState(page)) === st,
		async () => `${who}'s stream indicator says ${st} (it says ` +
		`${await streamState(page).catch(() => '?')})`, ms);
}

// Saves the viewport as <out>/<name>.png; the summary lists it.
export async function shot(page, name) {
	const file = path.join(run.out, name + '.png');
	await page.screenshot({ path: file, fullPage: false });
	run.shots.push(path.relative(TOP, file));
}

// Opens baseUrl and connects as nick; resolves once the chat view shows that
// nickname.
export async function connectAs(page, baseUrl, nick) {
	await page.goto(baseUrl + '/', { timeout: WAIT_MS });
	await page.fill(tid('nick-input'), nick, { timeout: WAIT_MS });
	await page.click(tid('connect-btn'), { timeout: WAIT_MS });
	await page.waitForSelector(`${tid('chat-view')}:visible`,
		{ timeout: WAIT_MS });
	const shown = await page.textContent(tid('me-nick'));
	same(shown, nick, `${nick}'s page shows the nickname`);
}

// Creates room from the page; resolves once the page is in it (room title)
// and its stream is live.
export async function createRoom(page, who, room) {
	await page.fill(tid('create-input'), room);
	await page.click(tid('create-btn'));
	await waitCmd(page, who, new RegExp(`Created room ${room}`));
	same(await page.textContent(tid('room-title')), '#' + room,
		`${who}'s room title`);
	await waitStream(page, who, 'live');
}

// Joins room from the page's room list (refreshed first: the page refreshes
// it only periodically); resolves once its stream is live.
export async function joinFromList(page, who, room) {
	const item = `${tid('room-item')}[data-room="${room}"] button`;
	await page.click(tid('rooms-refresh'));
	await page.click(item);
	await waitCmd(page, who, new RegExp(`You joined ${room} \\(`));
	await waitStream(page, who, 'live');
}

// Reloads the page; resolves once it shows the chat again (no connect
// screen: the session is kept) under the same nickname, its stream live.
export async function reloadPage(page, who) {
	await page.reload({ timeout: WAIT_MS });
	await page.waitForSelector(`${tid('chat-view')}:visible`);
	same(await page.textContent(tid('me-nick')), who,
		`${who}'s nickname after the reload`);
	await waitStream(page, who, 'live');
}

// The text of the page's command output.
export async function cmdText(page) {
	return page.textContent(tid('cmd-text'));
}

// Resolves once the command output matches re.
export async function waitCmd(page, who, re) {
	await until(async () => re.test(await cmdText(page)),
		async () => `${who}'s command output matches ${re} (it says ` +
		`${JSON.stringify(await cmdText(page).catch(() => ''))})`);
}

// Types a line into the composer and sends it with Enter; resolves when the
// server took it (the input is cleared on success).
export async function say(page, who, text) {
	await page.fill(tid('message-input'), text, { timeout: WAIT_MS });
	await page.press(tid('message-input'), 'Enter', { timeout: WAIT_MS });
	await until(async () =>
		(await page.inputValue(tid('message-input'))) === '',
	async () => `${who}'s message ${JSON.stringify(text)} accepted ` +
	`(output: ${JSON.stringify(await cmdText(page).catch(() => ''))})`);
}

// Throws unless every seq of msgs is a positive integer, shown once,
// ascending.
export function assertSeqs(msgs, who) {
	const seqs = msgs.map((m) => m.seq);
	assert(seqs.every((s) => Number.isSafeInteger(s) && s > 0),
		`${who}: bad seq in ${JSON.stringify(seqs)}`);
	assert(new Set(seqs).size === seqs.length,
		`${who}: a seq shown twice: ${JSON.stringify(seqs)}`);
	for (let i = 1; i < seqs.length; i++)
		assert(seqs[i] > seqs[i - 1],
			`${who}: not in seq order: ${JSON.stringify(seqs)}`);
}

// assertSeqs(), and every content shown once.
export function assertOnceInOrder(msgs, who) {
	assertSeqs(msgs, who);
	const c = msgs.map((m) => m.content);
	assert(new Set(c).size === c.length,
		`${who}: a message shown twice: ${JSON.stringify(msgs)}`);
}
