// Browser test of the web client through nginx in front of three server
// instances on one database: headless Debian Chromium driven by
// playwright-core, two pages (alice, bob) that only ever talk to the proxy,
// which spreads every request round robin (no sticky sessions). One
// instance is stopped and started again while the pages chat.
//
// Environment: BD_SERVER (the server binary), BD_CLUSTER_DATABASE_URL (a
// migrated, otherwise unused database; DATABASE_URL is not used). Optional:
// BD_CHROMIUM (default /usr/bin/chromium), BD_NGINX (default
// /usr/sbin/nginx), BD_BROWSER_CLUSTER_OUT (default
// tests/output/browser-cluster).
// Prints one line per check and `browser-cluster: N passed, M failed` at the
// end; exits non-zero when a check failed. What it shares with chat.test.mjs
// is in lib.mjs.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {
	TOP, RECOVER_MS, SERVER_MS, log, begin, showOnFailure, check,
	fail, assert, same, until, tail, finish, cleanOut, makeTmp, guard,
	attempt, freePort, spawnLogged, terminate, Server, psql, launchBrowser,
	countStreams, streamCounters, openPage, tid, pageMessages, waitMessages,
	streamState, waitStream, shot, connectAs, createRoom, joinFromList,
	reloadPage, say, assertOnceInOrder, sessionOf,
} from './lib.mjs';

const OUT = path.resolve(process.env.BD_BROWSER_CLUSTER_OUT ||
	path.join(TOP, 'tests', 'output', 'browser-cluster'));
const NGINX = process.env.BD_NGINX || '/usr/sbin/nginx';
const NGINX_CONF = path.join(TOP, 'contrib', 'nginx', 'babydiscord.conf');
const ROOM = 'hall';
const NINST = 3;
const HISTORY = 10;		// history_size: what a fresh stream replays

begin({ name: 'browser-cluster', out: OUT, logs: 'logs ' +
	`${path.relative(TOP, OUT)}/instance{1,2,3}.log, ` +
	`${path.relative(TOP, OUT)}/nginx/logs/` });

// ---- processes --------------------------------------------------------------

// Instance n of the server: its config (instanceN.json, on the test's ports
// and database) and log (instanceN.log) in OUT.
class Instance extends Server {
	constructor(n, bin, ports, db) {
		const id = `instance${n}`;
		// DATABASE_URL would override database_url: the other test's.
		super(bin, path.join(OUT, `${id}.json`), path.join(OUT, `${id}.log`),
			{ id, env: { ...process.env, DATABASE_URL: db } });
		this.n = n;
		this.ports = ports;	// { tcp, http }
		fs.writeFileSync(this.config, JSON.stringify({
			instance_id: this.id,
			listen_address: '127.0.0.1',
			tcp_port: ports.tcp,
			http_port: ports.http,
			database_url: db,
			log_level: 'info',
			static_dir: path.join(TOP, 'static'),
			session_idle_timeout_s: 60,
			sse_heartbeat_s: 2,
		}, null, 2) + '\n');
	}

	get upstream() {
		return `127.0.0.1:${this.ports.http}`;
	}

	// Server.start(), and its ready line names the test's ports.
	async start() {
		const ready = await super.start();
		same([ready.tcp, ready.http], [`127.0.0.1:${this.ports.tcp}`,
			`127.0.0.1:${this.ports.http}`],
		`${this.id}'s ready line (tcp, http)`);
	}
}

// contrib/nginx/babydiscord.conf with its listen ports (HTTP and HTTPS) and
// the three upstream ports moved to the test's, run in the foreground
// (daemon off) as our child under a private prefix, with the self-signed
// certificate contrib/nginx/run.sh makes there.
class Nginx {
	constructor(port, tlsPort, upstreams) {
		this.port = port;
		this.tlsPort = tlsPort;
		this.upstreams = upstreams;	// ports of instance 1..3
		this.prefix = path.join(OUT, 'nginx');
		this.conf = path.join(this.prefix, 'babydiscord.conf');
		this.errorLog = path.join(this.prefix, 'logs', 'error.log');
		this.accessLog = path.join(this.prefix, 'logs', 'access.log');
		this.stderrLog = path.join(this.prefix, 'logs', 'stderr.log');
		this.proc = null;
	}

	writeConf() {
		const from = [8080, 8443, 3001, 3002, 3003];
		const to = [this.port, this.tlsPort, ...this.upstreams];
		const counts = from.map(() => 0);
		const text = fs.readFileSync(NGINX_CONF, 'utf8').split('\n')
			.map((line) => {
				const hash = line.indexOf('#');
				let code = hash < 0 ? line : line.slice(0, hash);
				const rest = hash < 0 ? '' : line.slice(hash);
				from.forEach((p, i) => {
					code = code.replace(new RegExp(
						`\\b127\\.0\\.0\\.1:${p}\\b`, 'g'), () => {
						counts[i]++;
						return `127.0.0.1:${to[i]}`;
					});
				});
				return code + rest;
			}).join('\n');
		from.forEach((p, i) => same(counts[i], 1,
			`occurrences of 127.0.0.1:${p} outside comments in ` +
			path.relative(TOP, NGINX_CONF)));
		fs.writeFileSync(this.conf, text);
	}

	// Starts nginx; resolves once GET /health answers 200 through it.
	async start() {
		if (!fs.existsSync(NGINX))
			throw new Error(`${NGINX} is missing: this test needs ` +
				'Debian\'s nginx (contrib/install-deps.sh --nginx; ' +
				'`make check-browser` installs it)');
		fs.rmSync(this.prefix, { recursive: true, force: true });
		fs.mkdirSync(path.join(this.prefix, 'logs'), { recursive: true });
		fs.mkdirSync(path.join(this.prefix, 'tmp'), { recursive: true });
		this.writeConf();
		execFileSync(path.join(TOP, 'contrib', 'nginx', 'run.sh'), ['cert'],
			{ env: { ...process.env, BD_NGINX_PREFIX: this.prefix },
				stdio: 'ignore' });
		const proc = spawnLogged(NGINX, ['-p', this.prefix, '-e',
			'logs/error.log', '-c', this.conf, '-g', 'daemon off;'],
		this.stderrLog, process.env);
		this.proc = proc;
		let last = 'no answer yet';
		await until(async () => {
			if (proc.gone) {
				const r = await proc.exited;
				throw new Error('nginx exited at start (' +
					`${r.error ? r.error.message : r.code ?? r.sig}); ` +
					`${this.errorLog}:\n` + tail(this.errorLog)
					.concat(tail(this.stderrLog)).join('\n'));
			}
			try {
				const r = await httpGet(this.port, '/health');
				last = `${r.status} ${r.body}`;
				return r.status === 200;
			} catch (e) {
				last = e.message;
				return false;
			}
		}, () => `GET /health through nginx on ${this.port} answers 200 ` +
			`(last: ${last})`, SERVER_MS);
	}

	async stop() {
		return terminate(this.proc, 'nginx');
	}

	// SIGTERM (fast shutdown: the master stops its workers); used when
	// the test dies, so no waiting.
	termNow() {
		if (this.proc && !this.proc.gone)
			this.proc.kill('SIGTERM');
	}

	// The access log's requests: { method, uri, status, upstream (the
	// one that answered), upstreams (every one tried) }.
	requests() {
		let text = '';
		try {
			text = fs.readFileSync(this.accessLog, 'utf8');
		} catch (e) {
			return [];
		}
		const re = /"(\S+) (\S+)" (\d{3}) \d+ upstream=(.*?) upstream_status=(.*?) request_time=/;
		return text.split('\n').filter(Boolean).map((l) => {
			const m = re.exec(l);
			assert(m, `access log line not understood: ${l}`);
			const ups = m[4].split(/[,:]\s+|\s+:\s+/).map((s) =>
				s.trim()).filter((s) => s && s !== '-');
			const sts = m[5].split(/[,:]\s+|\s+:\s+/).map((x) =>
				x.trim());
			return { method: m[1], uri: m[2], status: Number(m[3]),
				upstream: ups[ups.length - 1] || '-',
				upstreams: ups,
				upstreamStatus: sts[sts.length - 1] || '-', line: l };
		});
	}
}

// GET p on 127.0.0.1:port; resolves with { status, body }.
function httpGet(port, p, ms = 3000) {
	return new Promise((resolve, reject) => {
		const req = http.get({ host: '127.0.0.1', port, path: p,
			agent: false, timeout: ms }, (res) => {
			let body = '';
			res.setEncoding('utf8');
			res.on('data', (d) => { body += d; });
			res.on('end', () => resolve({ status: res.statusCode, body }));
			res.on('error', reject);
		});
		req.on('timeout', () => req.destroy(new Error(`GET ${p}: ` +
			`no answer in ${ms} ms`)));
		req.on('error', reject);
	});
}

// GET /health through the proxy until every instance in `ids` has
// answered (round robin brings each in turn); resolves with
// { id: health }. Fails when another instance answers.
async function healthThroughProxy(port, ids) {
	const got = {};
	for (let i = 0; i < 10 * NINST && Object.keys(got).length < ids.length;
		i++) {
		const r = await httpGet(port, '/health');
		assert(r.status === 200, `GET /health through the proxy: ` +
			`${r.status} ${r.body}`);
		const h = JSON.parse(r.body);
		assert(ids.includes(h.instance_id), `/health answered by ` +
			`${h.instance_id}, not one of ${ids.join(', ')}`);
		got[h.instance_id] = h;
	}
	same(Object.keys(got).sort(), [...ids].sort(),
		`instances that answered /health through the proxy in ${10 * NINST} tries`);
	return got;
}

// One statement through psql on BD_CLUSTER_DATABASE_URL; its output.
const sql = (query) => psql(process.env.BD_CLUSTER_DATABASE_URL, query);

// The room's rows of the messages table, by seq, shaped like pageMessages.
async function tableMessages() {
	return JSON.parse(await sql(`SELECT coalesce(json_agg(json_build_object(
		'seq', m.seq, 'user', m.nickname, 'content', m.content)
		ORDER BY m.seq), '[]') FROM messages m JOIN rooms r
		ON r.id = m.room_id WHERE r.name = '${ROOM}'`));
}

// ---- the scenario -----------------------------------------------------------

async function scenario(ctx, inst, proxy) {
	const base = `http://127.0.0.1:${proxy.port}`;
	const ids = inst.map((i) => i.id);
	const pageErrors = [];
	const streamReqs = [];	// { who, t, path, lastEventId }
	await countStreams(ctx);
	const newPage = async (who) => {
		const p = await openPage(ctx, who, pageErrors);
		p.on('request', (r) => {
			const u = new URL(r.url());
			if (!u.pathname.startsWith('/api/messages/'))
				return;
			const q = { who, t: Date.now(), path: u.pathname,
				lastEventId: undefined };
			streamReqs.push(q);
			// the headers the network stack sent (EventSource adds
			// Last-Event-ID to its reconnects)
			r.allHeaders().then((h) => {
				q.lastEventId = h['last-event-id'] ?? null;
			}, () => {
				q.lastEventId = null;
			});
		});
		return p;
	};
	const alice = await newPage('alice');
	const bob = await newPage('bob');
	const pages = [[alice, 'alice'], [bob, 'bob']];
	const sessions = {};
	const sent = [];	// contents, in the order the checks expect them

	// Both pages show exactly `sent`, once each, in one seq order that
	// equals the messages table.
	const agree = async (what) => {
		const shown = [];
		for (const [p, who] of pages) {
			const m = await waitMessages(p, who, sent);
			assertOnceInOrder(m, who);
			same(m.map((x) => x.content).sort(), [...sent].sort(),
				`${who}: the messages shown`);
			same((await streamCounters(p)).dups, [],
				`${who}: seqs the server sent twice`);
			shown.push(m);
		}
		same(shown[1], shown[0], `bob's page equals alice's (${what})`);
		same(await tableMessages(), shown[0],
			`the messages table (by seq) equals the pages (${what})`);
		return shown[0];
	};

	// The pages kept the sessions they got at connect and the chat view.
	const sameSessions = async () => {
		for (const [p, who] of pages) {
			same(await sessionOf(p), sessions[who],
				`${who}'s session id (never re-created)`);
			assert(await p.isVisible(tid('chat-view')) &&
				!await p.isVisible(tid('connect-view')),
			`${who}'s page still shows the chat, not the connect screen`);
		}
	};

	await check('alice and bob connect from pages on the proxy', async () => {
		for (const [p, who] of pages) {
			await connectAs(p, base, who);
			sessions[who] = await sessionOf(p);
			assert(/^[0-9a-f]{32}$/.test(sessions[who] || ''),
				`${who}'s session id: ${sessions[who]}`);
		}
		await shot(alice, '01-alice-connected');
	});

	await check(`alice creates ${ROOM}, bob joins it from the room list`,
		async () => {
			await createRoom(alice, 'alice', ROOM);
			await joinFromList(bob, 'bob', ROOM);
			await until(async () => {
				const n = await alice.$$eval(`${tid('messages')} ` +
					tid('system-notice'), (l) => l.map((x) =>
					x.textContent));
				return n.includes(`bob joined ${ROOM}`);
			}, 'alice\'s page shows "bob joined"');
		});

	await check('six messages, three from each page, some at once: both ' +
		'pages show all six once, in the same order, equal to the table',
	async () => {
		const m = (who, i) => `${who} #${i} through the proxy`;
		sent.push(m('alice', 1));
		await say(alice, 'alice', m('alice', 1));
		sent.push(m('bob', 1));
		await say(bob, 'bob', m('bob', 1));
		for (const i of [2, 3]) {
			sent.push(m('alice', i), m('bob', i));
			await Promise.all([say(alice, 'alice', m('alice', i)),
				say(bob, 'bob', m('bob', i))]);
		}
		const shown = await agree('six messages');
		same(shown.length, 6, 'messages shown');
		await shot(alice, '02-alice-six-messages');
		await shot(bob, '03-bob-six-messages');
		return 'seqs ' + shown.map((x) => x.seq).join(',');
	});

	await check('the pages\' API requests (POST /api/...) reached all three ' +
		'instances through nginx, each answered 200',
	async () => {
		const posts = proxy.requests().filter((r) =>
			r.method === 'POST' && r.uri.startsWith('/api/'));
		// 2 connects, a /create, a /join, six messages
		same(posts.length, 10, 'POST /api/... lines in the access log');
		const bad = posts.filter((r) => r.status !== 200);
		same(bad.map((r) => r.line), [], 'POSTs not answered 200');
		const per = Object.fromEntries(inst.map((i) => [i.id,
			posts.filter((r) => r.upstream === i.upstream).length]));
		for (const i of inst)
			assert(per[i.id] >= 1, `${i.id} (${i.upstream}) served ` +
				`none of the pages' POSTs: ${JSON.stringify(per)}\n` +
				posts.map((r) => '  ' + r.line).join('\n'));
		// Two sessions, three instances answering them with 200: at
		// least one session was served by two instances.
		return Object.entries(per).map(([k, v]) => `${k} ${v}`)
			.join(', ');
	});

	// The instance with the most streams of the pages is stopped; which
	// one that is comes from /health (its stream count) through the proxy.
	let victim, affected;
	await check('an instance holding page streams stops (SIGTERM, exit 0): ' +
		'the pages on it reconnect through the proxy to the others, ' +
		'same EventSource and session, with Last-Event-ID',
	async () => {
		let hs;
		await until(async () => {
			hs = await healthThroughProxy(proxy.port, ids);
			return ids.reduce((n, id) => n + hs[id].streams, 0) === 2;
		}, () => 'the pages\' two streams counted by /health: ' +
			JSON.stringify(Object.fromEntries(ids.map((id) =>
				[id, hs && hs[id].streams]))));
		victim = inst.reduce((a, b) => hs[b.id].streams >
			hs[a.id].streams ? b : a);
		const onVictim = hs[victim.id].streams;
		assert(onVictim >= 1, 'an instance with a stream');
		const before = {};
		for (const [p, who] of pages) {
			const m = await pageMessages(p);
			before[who] = { c: await streamCounters(p),
				lastSeq: m[m.length - 1].seq };
		}
		// The pages' stream requests are held in the browser (not
		// sent) until released: the reconnects wait there, so the
		// messages below are certainly sent while the affected pages
		// are disconnected.
		const held = [];
		let holding = true;
		const isStream = (u) => u.pathname.startsWith('/api/messages/');
		const gate = (route) => {
			if (!holding)
				return route.continue();
			held.push(route);
		};
		for (const [p] of pages)
			await p.route(isStream, gate);
		const t0 = Date.now();
		const r = await victim.stop();
		same(r && r.code, 0, `${victim.id}'s exit status after SIGTERM`);
		// its streams end: those pages notice (an error event on
		// their EventSource) and show "reconnecting"
		await until(async () => {
			affected = [];
			for (const [p, who] of pages)
				if ((await streamCounters(p)).errors > before[who].c.errors)
					affected.push(who);
			return affected.length >= onVictim;
		}, () => `${onVictim} page(s) see their stream end`);
		const affPages = pages.filter(([, who]) => affected.includes(who));
		// the EventSource waits the server's retry (3 s) before it
		// reconnects
		for (const [p, who] of affPages)
			await waitStream(p, who, 'reconnecting');
		await shot(affPages[0][0], `04-${affPages[0][1]}-reconnecting`);

		// their reconnects (the EventSource retries after 3 s) wait at
		// the gate
		await until(() => held.length >= affPages.length,
			() => `the affected pages' reconnects held (${held.length} ` +
			`of ${affPages.length})`, RECOVER_MS);

		// one message from each page while the stream(s) reconnect
		const down = (who) => `${who}, with ${victim.id} down`;
		sent.push(down('alice'), down('bob'));
		await Promise.all([say(alice, 'alice', down('alice')),
			say(bob, 'bob', down('bob'))]);
		for (const [p, who] of affPages) {
			same(await streamState(p), 'reconnecting',
				`${who}'s stream while its reconnect is held`);
			const shown = (await pageMessages(p)).map((x) => x.content);
			same(shown.filter((c) => c === down('alice') ||
				c === down('bob')), [], `${who}: messages sent while ` +
				'it was disconnected, shown before it reconnected');
		}
		holding = false;
		for (const route of held)
			await route.continue();
		for (const [p] of pages)
			await p.unroute(isStream, gate);

		for (const [p, who] of pages)
			await waitStream(p, who, 'live', RECOVER_MS);
		await agree(`${victim.id} down`);
		const ended = [];
		for (const [p, who] of pages)
			if ((await streamCounters(p)).errors > before[who].c.errors)
				ended.push(who);
		same(ended, affected, `pages whose stream ended (${victim.id} ` +
			`had ${onVictim} stream(s))`);
		for (const [p, who] of pages) {
			const c = await streamCounters(p);
			same(c.made, before[who].c.made, `${who}: EventSource ` +
				'objects made (none new: the browser reconnected ' +
				'the same one, the session still valid)');
			const reqs = streamReqs.filter((q) => q.who === who &&
				q.t >= t0);
			if (!affected.includes(who)) {
				same(c.opens, before[who].c.opens,
					`${who}: stream opens (its stream was elsewhere)`);
				same(reqs.length, 0, `${who}: stream requests`);
				continue;
			}
			same(c.opens, before[who].c.opens + 1,
				`${who}: stream opens (one reconnect)`);
			assert(reqs.length >= 1, `${who}: a stream request after ` +
				`the stop (seen: ${JSON.stringify(reqs)})`);
			// Its Last-Event-ID is added by Chromium's network
			// stack below the gate, out of Playwright's sight (a
			// held request shows no such header). That it was
			// sent shows in what the stream brought: a stream
			// without it starts with the room's last HISTORY
			// messages, seq lastSeq among them (only two came
			// after it), which the page already had; agree()
			// found no seq sent twice.
			assert(before[who].lastSeq >= 1 &&
				sent.length - before[who].lastSeq < HISTORY,
			`${who}: a fresh stream would have resent seq ` +
				`${before[who].lastSeq}`);
		}
		// the streams now live on the other two
		const rest = ids.filter((id) => id !== victim.id);
		await until(async () => {
			hs = await healthThroughProxy(proxy.port, rest);
			return rest.reduce((n, id) => n + hs[id].streams, 0) === 2;
		}, () => `the two streams on ${rest.join(' and ')}: ` +
			JSON.stringify(Object.fromEntries(rest.map((id) =>
				[id, hs && hs[id].streams]))));
		const [ap, aw] = affPages[0];
		const notices = await ap.$$eval(`${tid('messages')} ` +
			tid('system-notice'), (l) => l.map((x) => x.textContent));
		await sameSessions();
		await shot(alice, `05-alice-${victim.id}-down`);
		return `stopped ${victim.id} (${onVictim} stream(s): ` +
			`${affected.join(', ')}; the messages were sent while ` +
			`${held.length} reconnect(s) were held); streams now ` +
			rest.map((id) =>
			`${id} ${hs[id].streams}`).join(', ') +
			`; ${aw}'s notices ${JSON.stringify(notices)}`;
	});

	await check('the stopped instance starts again and serves the pages ' +
		'through the proxy again; another round from both pages ' +
		'arrives once',
	async () => {
		await victim.start();
		// nginx left it out for fail_timeout (5 s); /health through the
		// proxy tells when it is back in the rotation
		await until(async () => {
			const r = await httpGet(proxy.port, '/health');
			return r.status === 200 &&
				JSON.parse(r.body).instance_id === victim.id;
		}, `${victim.id} answers /health through the proxy again`,
		RECOVER_MS);
		const from = proxy.requests().length;
		const again = (who, i) => `${who}, ${victim.id} back #${i}`;
		for (const i of [1, 2, 3]) {
			sent.push(again('alice', i), again('bob', i));
			await Promise.all([say(alice, 'alice', again('alice', i)),
				say(bob, 'bob', again('bob', i))]);
		}
		const shown = await agree(`${victim.id} back`);
		same(shown.length, 14, 'messages shown');
		await sameSessions();
		await shot(bob, '06-bob-instance-back');
		// round robin (nginx's smooth weighted one, which lets a
		// server that failed in slowly): six POSTs in a row reach
		// every instance, the restarted one too
		const reqs = proxy.requests().slice(from).filter((r) =>
			r.uri !== '/health');
		const name = (r) => ids[inst.findIndex((i) =>
			i.upstream === r.upstream)] || r.upstream;
		assert(reqs.some((r) => r.upstream === victim.upstream),
			`none of the pages' requests since ${victim.id} is back ` +
			`went to it:\n` + reqs.map((r) => '  ' + r.line).join('\n'));
		same(reqs.filter((r) => r.status !== 200).map((r) => r.line), [],
			'requests not answered 200');
		return 'the round\'s requests went to ' + reqs.map((r) =>
			`${r.method} ${r.uri} ${name(r)}`).join(', ');
	});

	await check('a reload keeps the session (no connect screen) and shows ' +
		'the history once', async () => {
		const before = await pageMessages(alice);
		await reloadPage(alice, 'alice');
		const want = before.slice(-HISTORY);
		const m = await waitMessages(alice, 'alice',
			want.map((x) => x.content));
		assertOnceInOrder(m, 'alice');
		same(m, want, 'alice\'s messages after the reload');
		same((await streamCounters(alice)).dups, [],
			'alice: seqs the server sent twice');
		await sameSessions();
		await shot(alice, '07-alice-reloaded');
	});

	await check('the sessions were never re-created: two POST /api/connect ' +
		'in the access log, every API request the instances answered ' +
		'got 200', async () => {
		await sameSessions();
		const api = proxy.requests().filter((r) =>
			r.uri.startsWith('/api/'));
		same(api.filter((r) => r.method === 'POST' &&
			r.uri === '/api/connect').length, 2,
		'POST /api/connect in the access log');
		same(api.filter((r) => r.status !== 200).map((r) => r.line), [],
			'API requests not answered 200');
		const n = (f) => api.filter(f).length;
		return `${n((r) => r.method === 'POST')} POSTs, ` +
			`${n((r) => r.uri.startsWith('/api/messages/'))} streams, ` +
			`${n((r) => r.uri === '/api/rooms')} room lists`;
	});

	await check('no uncaught errors in the pages', async () => {
		same(pageErrors, [], 'uncaught errors');
	});

	await check('the three instances stop cleanly (exit 0, no sanitizer report)',
		async () => {
			await ctx.close();
			for (const i of inst) {
				const r = await i.stop();
				same(r && r.code, 0, `${i.id}'s exit status after SIGTERM`);
				same(i.sanitizerLines(), [],
					`sanitizer lines in ${i.id}'s log`);
			}
		});

	await check('nginx stops (SIGTERM, exit 0)', async () => {
		const r = await proxy.stop();
		same(r && r.code, 0, 'nginx exit status after SIGTERM');
	});
}

// ---- main --------------------------------------------------------------------

async function main() {
	const bin = process.env.BD_SERVER;
	const db = process.env.BD_CLUSTER_DATABASE_URL;
	if (!bin || !db) {
		log('browser-cluster: set BD_SERVER (server binary) and ' +
			'BD_CLUSTER_DATABASE_URL (a migrated, otherwise unused ' +
			'database); `make check-browser` does');
		process.exit(2);
	}
	cleanOut((f) => /\.(png|log|json)$/.test(f) || f === 'nginx');

	const tmp = makeTmp();
	const inst = [];
	for (let n = 1; n <= NINST; n++)
		inst.push(new Instance(n, bin, { tcp: 0, http: 0 }, db));
	const proxy = new Nginx(await freePort(), await freePort(),
		inst.map((i) => i.ports.http));
	showOnFailure([...inst.map((i) => i.logFile), proxy.errorLog]);
	const killAll = () => {
		for (const i of inst)
			i.killNow();
		proxy.termNow();
	};
	guard(tmp, killAll, () => {
		fail('run time');
		killAll();
	});
	let ctx = null;

	await attempt(async () => {
		await check('three instances on one database start and report ready',
			() => Promise.all(inst.map((i) => i.start())));
		proxy.upstreams = inst.map((i) => i.ports.http);
		log(`browser-cluster: server ${bin}; ` + inst.map((i) =>
			`${i.id} tcp ${i.ports.tcp} http ${i.ports.http}`).join(', ') +
			`; pages through nginx on ${proxy.port}`);
		await check('nginx (contrib/nginx/babydiscord.conf on the test\'s ' +
			'ports) answers /health from each instance in turn',
		async () => {
			await proxy.start();
			const hs = await healthThroughProxy(proxy.port,
				inst.map((i) => i.id));
			return Object.keys(hs).sort().join(', ');
		});
		ctx = await launchBrowser(path.join(tmp, 'profile'));
		await scenario(ctx, inst, proxy);
	}, async () => {
		if (ctx)
			await ctx.close().catch(() => {});
		await proxy.stop().catch((e) => log(`browser-cluster: ${e.message}`));
		for (const i of inst)
			await i.stop().catch((e) => log(`browser-cluster: ${e.message}`));
	});
}

await main();
finish();
