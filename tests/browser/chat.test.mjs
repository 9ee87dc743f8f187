// Browser test of the web client in static/: headless Debian Chromium driven
// by playwright-core, two pages (alice, bob), a raw TCP client (carol), a
// server restart in the middle, and a phone-sized page.
//
// Environment: BD_SERVER (the server binary), DATABASE_URL (a migrated,
// otherwise unused database). Optional: BD_CHROMIUM (default
// /usr/bin/chromium), BD_BROWSER_OUT (default tests/output/browser).
// Prints one line per check and `browser: N passed, M failed` at the end;
// exits non-zero when a check failed. What it shares with cluster.test.mjs
// is in lib.mjs.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
	TOP, WAIT_MS, RECOVER_MS, log, begin, showOnFailure, check, assert,
	same, pause, until, finish, cleanOut, makeTmp, guard, attempt,
	Server, psql, launchBrowser, countStreams, streamCounters, openPage, tid,
	pageMessages, waitMessages, streamState, waitStream, shot, connectAs,
	createRoom, joinFromList, reloadPage, cmdText, waitCmd, say, assertSeqs,
	assertOnceInOrder, sessionOf,
} from './lib.mjs';

const OUT = path.resolve(process.env.BD_BROWSER_OUT ||
	path.join(TOP, 'tests', 'output', 'browser'));
const ROOM = 'lounge';
const IDLE_S = 6;		// the server's session_idle_timeout_s: over the
				// EventSource's 3 s retry

begin({ name: 'browser', out: OUT, logs: 'server log ' +
	path.relative(TOP, path.join(OUT, 'server.log')) });

// ---- the database, the relay ------------------------------------------------

// One statement through psql on DATABASE_URL; resolves with its output.
const sql = (query) => psql(process.env.DATABASE_URL, query);

// A TCP relay in front of the HTTP port: the pages talk through it, so the
// test can cut their connections (a network blip) while the server and its
// sessions live on, and hold new ones (accepted, but not passed on until
// release()) so that a page is certainly disconnected meanwhile.
class Relay {
	constructor(target) {
		this.target = target;
		this.pairs = new Set();
		this.held = null;	// connections waiting, while holding
		this.heldTotal = 0;	// connections ever held
		this.server = net.createServer((c) => {
			if (!this.held)
				return this.join(c);
			this.heldTotal++;
			this.held.push(c);
			c.on('error', () => c.destroy());
		});
	}

	join(c) {
		const u = net.connect(this.target, '127.0.0.1');
		const pair = [c, u];
		this.pairs.add(pair);
		const drop = () => {
			c.destroy();
			u.destroy();
			this.pairs.delete(pair);
		};
		c.on('error', drop);
		u.on('error', drop);
		c.on('close', drop);
		u.on('close', drop);
		c.pipe(u);
		u.pipe(c);
	}

	// From now on new connections wait (their bytes unread) until
	// release().
	hold() {
		this.held = this.held || [];
	}

	// Passes the waiting connections on (those still open); new ones go
	// through again. Returns how many were waiting.
	release() {
		const held = this.held || [];
		this.held = null;
		for (const c of held)
			if (!c.destroyed)
				this.join(c);
		return held.length;
	}

	listen() {
		return new Promise((resolve, reject) => {
			this.server.on('error', reject);
			this.server.listen(0, '127.0.0.1', () =>
				resolve(this.server.address().port));
		});
	}

	// Resets every open connection; returns how many there were.
	cut() {
		const n = this.pairs.size;
		for (const [c, u] of [...this.pairs]) {
			c.resetAndDestroy();
			u.destroy();
		}
		this.pairs.clear();
		return n;
	}

	close() {
		this.release();
		this.cut();
		this.server.close();
	}
}

// ---- a raw TCP client ------------------------------------------------------

class Tcp {
	constructor(name) {
		this.name = name;
		this.lines = [];
		this.closed = false;
		this.sock = null;
	}

	connect(port) {
		return new Promise((resolve, reject) => {
			let buf = '';
			const s = net.connect(port, '127.0.0.1');
			this.sock = s;
			s.setEncoding('utf8');
			s.on('data', (d) => {
				buf += d;
				let i;
				while ((i = buf.indexOf('\n')) >= 0) {
					this.lines.push(buf.slice(0, i));
					buf = buf.slice(i + 1);
				}
			});
			s.on('close', () => {
				this.closed = true;
			});
			s.on('error', (e) => {
				if (!this.closed)
					reject(e);
			});
			s.on('connect', resolve);
		});
	}

	send(line) {
		this.sock.write(line + '\n');
	}

	// Index of the first line at or after `from` that matches.
	find(re, from = 0) {
		for (let i = from; i < this.lines.length; i++)
			if (re.test(this.lines[i]))
				return i;
		return -1;
	}

	wait(re, from = 0, ms = WAIT_MS) {
		return until(() => {
			const i = this.find(re, from);
			return i >= 0 ? i + 1 : 0;
		}, () => `${this.name} (TCP) sees ${re}; got:\n    ` +
			this.lines.slice(-8).join('\n    '), ms);
	}

	// Room messages of `room` as "user: text", in arrival order.
	roomLines(room, from = 0) {
		const p = `[${room}] `;
		return this.lines.slice(from).filter((l) => l.startsWith(p))
			.map((l) => l.slice(p.length));
	}

	close() {
		if (this.sock)
			this.sock.destroy();
	}
}

// ---- the scenario -----------------------------------------------------------

async function scenario(ctx, server, ports, relay) {
	const base = `http://127.0.0.1:${ports.relay}`;
	const pageErrors = [];
	const newPage = (who) => openPage(ctx, who, pageErrors);
	await countStreams(ctx);
	const dupSeqs = async (p) => (await streamCounters(p)).dups;
	const alice = await newPage('alice');
	const bob = await newPage('bob');
	const carol = new Tcp('carol');
	const A1 = 'hello from alice';
	const B1 = 'hello from bob';
	const C1 = 'hello from carol';
	const XSS = '<img src=x onerror="window.__xss=1">';
	const C2 = 'carol, after the restart';
	const A2 = 'alice, after the restart';

	await check('alice and bob connect from the page; carol over TCP',
		async () => {
			await connectAs(alice, base, 'alice');
			await connectAs(bob, base, 'bob');
			await carol.connect(ports.tcp);
			await carol.wait(/^\[system\] Type \/help for commands\.$/);
			carol.send('/nick carol');
			await carol.wait(/^\[system\] You are now carol$/);
			await shot(alice, '01-alice-connected');
		});

	await check(`alice creates ${ROOM} in the page, bob and carol join`,
		async () => {
			await createRoom(alice, 'alice', ROOM);
			await joinFromList(bob, 'bob', ROOM);

			carol.send(`/join ${ROOM}`);
			await carol.wait(new RegExp(`^\\[system\\] You joined ${ROOM} \\(`));
			// the room list counts all three, online
			const counts = `${tid('room-item')}[data-room="${ROOM}"] ` +
				tid('room-counts');
			await alice.click(tid('rooms-refresh'));
			await until(async () => /^3 members . 3 online$/.test(
				await alice.textContent(counts)),
			async () => 'alice\'s room list says 3 members, 3 ' +
				`online (it says ${await alice.textContent(counts)})`);
		});

	let order;
	await check('three messages sent at once: every client sees all three in the same order',
		async () => {
			const from = carol.lines.length;
			await Promise.all([
				say(alice, 'alice', A1),
				say(bob, 'bob', B1),
				Promise.resolve(carol.send(C1)),
			]);
			const want = [A1, B1, C1];
			const ma = await waitMessages(alice, 'alice', want);
			const mb = await waitMessages(bob, 'bob', want);
			await until(() => carol.roomLines(ROOM, from).length >= 3,
				'carol receives three room lines');
			assertSeqs(ma, 'alice');
			assertSeqs(mb, 'bob');
			same(mb, ma, 'bob\'s page equals alice\'s');
			order = ma.map((m) => `${m.user}: ${m.content}`);
			same(carol.roomLines(ROOM, from), order,
				'carol\'s TCP order equals the pages\'');
			same(ma.map((m) => m.content).sort(), [...want].sort(),
				'the three messages, once each');
			await shot(alice, '02-alice-three-messages');
			await shot(bob, '03-bob-three-messages');
		});

	await check('markup in a message is shown as literal text', async () => {
		const from = carol.lines.length;
		await say(bob, 'bob', XSS);
		for (const [p, who] of [[alice, 'alice'], [bob, 'bob']]) {
			const m = await waitMessages(p, who, [XSS]);
			assert(m.some((x) => x.content === XSS && x.user === 'bob'),
				`${who}: literal text`);
			const img = await p.$$eval(`${tid('messages')} img`,
				(n) => n.length);
			same(img, 0, `${who}: <img> elements in the message list`);
			same(await p.evaluate(() => typeof window.__xss), 'undefined',
				`${who}: window.__xss`);
		}
		await carol.wait(/^\[lounge\] bob: <img src=x onerror="window.__xss=1">$/,
			from);
		await shot(alice, '04-alice-literal-markup');
	});

	await check('"who\'s online" lists alice, bob and carol', async () => {
		await bob.click(tid('who-btn'));
		await waitCmd(bob, 'bob', /^Online users \(3\):/);
		const t = await cmdText(bob);
		for (const n of ['alice', 'bob', 'carol'])
			assert(new RegExp(`^  ${n} \\(in ${ROOM}\\)$`, 'm').test(t),
				`/list shows ${n} in ${ROOM}: ${JSON.stringify(t)}`);
		same(await bob.getAttribute(tid('cmd-output'), 'data-success'),
			'true', 'bob\'s output is marked as a success');
	});

	await check('a failing command shows its error', async () => {
		await bob.fill(tid('join-input'), 'no-such-room');
		await bob.click(tid('join-btn'));
		await waitCmd(bob, 'bob', /^no such room: no-such-room$/);
		same(await bob.getAttribute(tid('cmd-output'), 'data-success'),
			'false', 'bob\'s output is marked as an error');
		same(await bob.textContent(tid('room-title')), '#' + ROOM,
			'bob is still in the room');
	});

	await check('an expired session whose nickname was taken meanwhile: ' +
		'the page says so and returns to the connect screen',
	async () => {
		const frank = await newPage('frank');
		await connectAs(frank, base, 'frank');
		// frank has no stream: the session expires after
		// session_idle_timeout_s; carol's /list tells when.
		let from = carol.lines.length;
		await until(async () => {
			carol.send('/list');
			const i = await carol.wait(
				/^\[system\] Online users \(\d+\):$/, from);
			const n = Number(/\d+/.exec(carol.lines[i - 1])[0]);
			await until(() => carol.lines.length >= i + n,
				'the whole /list answer');
			const list = carol.lines.slice(i, i + n);
			from = i + n;
			if (!list.some((l) => /^\[system\]   frank /.test(l)))
				return true;
			await pause(500);
			return false;
		}, 'frank\'s idle session expires', IDLE_S * 1000 + WAIT_MS);
		const mallory = new Tcp('mallory');
		await mallory.connect(ports.tcp);
		mallory.send('/nick frank');
		await mallory.wait(/^\[system\] You are now frank$/);
		await frank.click(tid('who-btn'));
		await frank.waitForSelector(`${tid('connect-view')}:visible`);
		const why = await frank.textContent(tid('connect-error'));
		assert(/frank/.test(why) && /taken/.test(why),
			`frank's page explains: ${JSON.stringify(why)}`);
		same(await frank.inputValue(tid('nick-input')), 'frank',
			'the nickname is kept in the form');
		same(await frank.evaluate(() => sessionStorage.length), 0,
			'the dead session is dropped from sessionStorage');
		await shot(frank, '05-frank-session-gone');
		mallory.close();
		await frank.close();
	});

	await check('network blip: the streams reconnect by themselves, ' +
		'same sessions, the missed message once (Last-Event-ID)',
	async () => {
		const sids = [await sessionOf(alice), await sessionOf(bob)];
		const before = await pageMessages(alice);
		const made = () => Promise.all([alice, bob].map(async (p) =>
			(await streamCounters(p)).made));
		const madeBefore = await made();
		const BLIP = 'carol, during the blip';
		// held from the cut on: the pages cannot reconnect until
		// released, so carol's message is certainly sent while both
		// are disconnected
		relay.hold();
		const heldBefore = relay.heldTotal;
		assert(relay.cut() >= 2, 'the relay cut the streams');
		await waitStream(alice, 'alice', 'reconnecting');
		await waitStream(bob, 'bob', 'reconnecting');
		const from = carol.lines.length;
		carol.send(BLIP);
		await carol.wait(new RegExp(`^\\[${ROOM}\\] carol: ${BLIP}$`), from);
		// both pages tried to reconnect (their EventSource retries
		// after 3 s) and wait in the relay
		await until(() => relay.heldTotal - heldBefore >= 2,
			() => 'the pages\' reconnects held by the relay (held ' +
			`${relay.heldTotal - heldBefore})`);
		for (const [p, who] of [[alice, 'alice'], [bob, 'bob']]) {
			same(await streamState(p), 'reconnecting',
				`${who}'s stream while held`);
			same((await pageMessages(p)).length, before.length,
				`${who}: messages shown while held (the blip's ` +
				'message was sent while it was disconnected)');
		}
		relay.release();
		for (const [p, who] of [[alice, 'alice'], [bob, 'bob']]) {
			await waitStream(p, who, 'live', RECOVER_MS);
			const m = await waitMessages(p, who, [BLIP]);
			assertOnceInOrder(m, who);
			same(m.slice(0, before.length), before,
				`${who}: the messages before the blip`);
			same(m.length, before.length + 1,
				`${who}: number of messages`);
		}
		same([await sessionOf(alice), await sessionOf(bob)], sids,
			'the pages kept their sessions');
		same(await made(), madeBefore,
			'EventSource objects made (none new: the browser reconnected)');
		for (const [p, who] of [[alice, 'alice'], [bob, 'bob']])
			same(await dupSeqs(p), [],
				`${who}: seqs the server sent twice`);
	});

	await check('server restart: both pages show reconnecting, then live ' +
		'again, same sessions (stored in the database); nothing lost, ' +
		'nothing twice',
		async () => {
			const before = await pageMessages(alice);
			const sids = [await sessionOf(alice), await sessionOf(bob)];
			const r = await server.stop();
			same(r && r.code, 0, 'server exit status after SIGTERM');
			await carol.wait(/^\[system\] server restarting, please reconnect$/);
			await until(() => carol.closed, 'carol\'s connection closed');
			await waitStream(alice, 'alice', 'reconnecting');
			await waitStream(bob, 'bob', 'reconnecting');
			await shot(alice, '06-alice-reconnecting');

			// the pages are held at the relay until carol has
			// talked: they certainly reconnect after her message
			relay.hold();
			const heldBefore = relay.heldTotal;
			await server.start();
			// carol is back first and talks while the pages
			// still reconnect.
			const carol2 = new Tcp('carol');
			await carol2.connect(ports.tcp);
			carol2.send('/nick carol');
			await carol2.wait(/^\[system\] You are now carol$/);
			carol2.send(`/join ${ROOM}`);
			await carol2.wait(new RegExp(`^\\[system\\] You joined ${ROOM} \\(`));
			const from = carol2.lines.length;
			carol2.send(C2);
			await carol2.wait(new RegExp(`^\\[${ROOM}\\] carol: ${C2}$`), from);
			await until(() => relay.heldTotal - heldBefore >= 2,
				() => 'the pages\' reconnects held by the relay ' +
				`(held ${relay.heldTotal - heldBefore})`, RECOVER_MS);
			for (const [p, who] of [[alice, 'alice'], [bob, 'bob']]) {
				same(await streamState(p), 'reconnecting',
					`${who}'s stream while held`);
				same((await pageMessages(p)).length, before.length,
					`${who}: messages shown while held (carol's ` +
					'message was sent while it was disconnected)');
			}
			relay.release();

			await waitStream(alice, 'alice', 'live', RECOVER_MS);
			await waitStream(bob, 'bob', 'live', RECOVER_MS);
			await waitMessages(alice, 'alice', [C2]);
			await waitMessages(bob, 'bob', [C2]);
			await shot(bob, '07-bob-live-again');

			// the pages can still talk after the restart
			await say(alice, 'alice', A2);
			await carol2.wait(new RegExp(`^\\[${ROOM}\\] alice: ${A2}$`), from);
			const want = [...before.map((m) => m.content), C2, A2];
			const ma = await waitMessages(alice, 'alice', want);
			const mb = await waitMessages(bob, 'bob', want);
			for (const [m, who] of [[ma, 'alice'], [mb, 'bob']]) {
				assertOnceInOrder(m, who);
				same(m.length, want.length,
					`${who}: number of messages shown`);
				same(m.slice(0, before.length), before,
					`${who}: the messages from before the restart`);
			}
			same(mb, ma, 'bob\'s page equals alice\'s');
			for (const [p, who] of [[alice, 'alice'], [bob, 'bob']])
				same(await dupSeqs(p), [],
					`${who}: seqs the server sent twice`);
			same([await sessionOf(alice), await sessionOf(bob)], sids,
				'the pages kept their sessions across the restart');
			await shot(alice, '08-alice-after-restart');
			carol.close();
			carol2.close();
		});

	await check('a reload keeps the session and shows the history once',
		async () => {
			const before = await pageMessages(alice);
			await reloadPage(alice, 'alice');
			const want = before.map((m) => m.content).slice(-10);
			const m = await waitMessages(alice, 'alice', want);
			assertSeqs(m, 'alice');
			same(m, before.slice(-10), 'alice\'s messages after the reload');
		});

	await check('phone-sized page (375x700): input and send visible, chat usable',
		async () => {
			const phone = await newPage('erin');
			await phone.setViewportSize({ width: 375, height: 700 });
			await connectAs(phone, base, 'erin');
			await shot(phone, '09-phone-connected');
			await phone.fill(tid('join-input'), ROOM);
			await phone.click(tid('join-btn'));
			await waitStream(phone, 'erin', 'live');
			await waitMessages(phone, 'erin', [A2]);
			for (const id of ['message-input', 'send-btn']) {
				const loc = phone.locator(tid(id));
				assert(await loc.isVisible(), `${id} is visible`);
				const b = await loc.boundingBox();
				assert(b && b.x >= 0 && b.y >= 0 &&
					b.x + b.width <= 375 && b.y + b.height <= 700,
				`${id} inside the 375x700 viewport: ${JSON.stringify(b)}`);
			}
			const sw = await phone.evaluate(() =>
				document.documentElement.scrollWidth);
			assert(sw <= 375, `no horizontal scrolling (width ${sw})`);
			await phone.fill(tid('message-input'), 'sent from a phone');
			await phone.click(tid('send-btn'));
			await waitMessages(phone, 'erin', ['sent from a phone']);
			await waitMessages(bob, 'bob', ['sent from a phone']);
			await shot(phone, '10-phone-room');

			// rename from the sidebar
			await phone.click(tid('sidebar-toggle'));
			await phone.fill(tid('newnick-input'), 'erin-phone');
			await phone.click(tid('nick-btn'));
			await waitCmd(phone, 'erin', /^You are now erin-phone$/);
			same(await phone.textContent(tid('me-nick')), 'erin-phone',
				'erin\'s nickname shown');
			await until(async () => (await bob.$$eval(
				`${tid('messages')} ${tid('system-notice')}`,
				(n) => n.map((x) => x.textContent))).includes(
				'erin is now known as erin-phone'),
			'bob sees the rename notice');
			await shot(phone, '11-phone-renamed');

			// disconnect returns to the connect screen
			await phone.click(tid('disconnect-btn'));
			await phone.waitForSelector(`${tid('connect-view')}:visible`);
		});

	await check('messages removed by retention while the server was down: ' +
		'the pages show "history truncated", then the current history',
	async () => {
		const before = await pageMessages(alice);
		const r = await server.stop();
		same(r && r.code, 0, 'server exit status after SIGTERM');
		await waitStream(alice, 'alice', 'reconnecting');
		await waitStream(bob, 'bob', 'reconnecting');
		// five messages the pages never saw, then keep only two
		await sql(`SELECT count(*) FROM bd_post((
			SELECT jsonb_agg(jsonb_build_object('r', r.id, 'u', u.id,
				'n', u.nickname, 'c', 'while away ' || g) ORDER BY g)
			FROM rooms r, users u, generate_series(1, 5) g
			WHERE r.name = '${ROOM}' AND lower(u.nickname) = 'carol'))`);
		same(await sql('SELECT bd_cleanup(2)'),
			String(before.length + 5 - 2),
			'messages deleted by bd_cleanup(2)');
		await server.start();
		const want = ['while away 4', 'while away 5'];
		for (const [p, who] of [[alice, 'alice'], [bob, 'bob']]) {
			await waitStream(p, who, 'live', RECOVER_MS);
			const m = await waitMessages(p, who, want);
			assertSeqs(m, who);
			same(m.map((x) => x.content), want,
				`${who}: the messages after the reset`);
			same(m[0].seq, before[before.length - 1].seq + 4,
				`${who}: first seq after the reset`);
			const notes = await p.$$eval(
				`${tid('messages')} ${tid('system-notice')}[data-kind="reset"]`,
				(n) => n.map((x) => x.textContent));
			assert(notes.length === 1 &&
				/^History truncated: 3 messages/.test(notes[0]),
			`${who}: one "history truncated" notice: ` +
				JSON.stringify(notes));
			same(await dupSeqs(p), [],
				`${who}: seqs the server sent twice`);
		}
		await shot(bob, '12-bob-history-truncated');
	});

	await check('no uncaught errors in the pages', async () => {
		same(pageErrors, [], 'uncaught errors');
	});

	await check('the server stops cleanly (exit 0, no sanitizer report)',
		async () => {
			const r = await server.stop();
			same(r && r.code, 0, 'server exit status after SIGTERM');
			same(server.sanitizerLines(), [],
				'sanitizer lines in the server log');
		});
}

// ---- main --------------------------------------------------------------------

async function main() {
	const bin = process.env.BD_SERVER;
	const db = process.env.DATABASE_URL;
	if (!bin || !db) {
		log('browser: set BD_SERVER (server binary) and DATABASE_URL ' +
			'(a migrated database); `make check-browser` does');
		process.exit(2);
	}
	cleanOut((f) => f.endsWith('.png') || f === 'server.log');

	const tmp = makeTmp();
	const ports = { tcp: 0, http: 0 };	// the server's, once it started
	const relay = new Relay(ports.http);
	ports.relay = await relay.listen();
	const config = path.join(tmp, 'config.json');
	fs.writeFileSync(config, JSON.stringify({
		tcp_port: ports.tcp,
		http_port: ports.http,
		database_url: db,
		log_level: 'info',
		static_dir: path.join(TOP, 'static'),
		session_idle_timeout_s: IDLE_S,
		sse_heartbeat_s: 2,
	}, null, 2));
	const server = new Server(bin, config, path.join(OUT, 'server.log'));
	showOnFailure([server.logFile]);
	guard(tmp, () => server.killNow());
	let ctx = null;

	await attempt(async () => {
		await check('server starts and reports ready', () => server.start());
		Object.assign(ports, server.ports);
		relay.target = ports.http;
		log(`browser: server ${bin}, tcp ${ports.tcp}, http ${ports.http}` +
			`, pages through a relay on ${ports.relay}`);
		ctx = await launchBrowser(path.join(tmp, 'profile'));
		await scenario(ctx, server, ports, relay);
	}, async () => {
		if (ctx)
			await ctx.close().catch(() => {});
		relay.close();
		await server.stop().catch((e) => log(`browser: ${e.message}`));
	});
}

await main();
finish();
