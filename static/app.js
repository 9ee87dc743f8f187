/*
 * Baby Discord browser client: plain JS, no dependencies.
 *
 * Talks to the HTTP API (POST /api/connect, /api/command, /api/message,
 * /api/disconnect, GET /api/rooms) and reads the current room through an
 * EventSource on /api/messages/<room>. Messages are kept per room by seq:
 * a seq is shown at most once and the list stays ordered by seq, so the
 * replays after a reconnect never duplicate anything.
 *
 * User text only ever reaches the page through textContent.
 */
'use strict';

(function () {
	const STORE_KEY = 'babydiscord.session';
	const ROOMS_EVERY_MS = 5000;
	const REQUEST_TIMEOUT_MS = 15000;
	const BACKOFF_MIN_MS = 500;
	const BACKOFF_MAX_MS = 5000;

	const el = (id) => document.getElementById(id);
	const ui = {
		me: el('me'),
		meNick: el('me-nick'),
		banner: el('banner'),
		connectView: el('connect-view'),
		connectForm: el('connect-form'),
		nickInput: el('nick-input'),
		connectBtn: el('connect-btn'),
		connectError: el('connect-error'),
		chatView: el('chat-view'),
		roomList: el('room-list'),
		roomsEmpty: el('rooms-empty'),
		roomsRefresh: el('rooms-refresh'),
		createForm: el('create-form'),
		createInput: el('create-input'),
		joinForm: el('join-form'),
		joinInput: el('join-input'),
		nickForm: el('nick-form'),
		newNickInput: el('newnick-input'),
		whoBtn: el('who-btn'),
		leaveBtn: el('leave-btn'),
		disconnectBtn: el('disconnect-btn'),
		roomTitle: el('room-title'),
		streamStatus: el('stream-status'),
		messages: el('messages'),
		cmdOutput: el('cmd-output'),
		cmdText: el('cmd-text'),
		cmdClose: el('cmd-close'),
		composer: el('composer'),
		messageInput: el('message-input'),
		sendBtn: el('send-btn'),
	};

	const state = {
		active: false,		/* the chat view is up */
		session: null,		/* session_id */
		nick: '',
		room: null,		/* current room, or null */
		view: null,		/* { room, seqs: Set, maxSeq } of the list */
		es: null,		/* EventSource of the current room */
		streamGen: 0,		/* bumps on every open/close: stale
					 * events are ignored */
		failures: 0,		/* streams refused in a row */
		recovery: null,		/* promise of a running recover() */
		roomsTimer: null,
		leaving: false,		/* the page is being unloaded */
	};

	/* ---- storage ---- */

	function save() {
		try {
			if (!state.session) {
				sessionStorage.removeItem(STORE_KEY);
				return;
			}
			sessionStorage.setItem(STORE_KEY, JSON.stringify({
				session: state.session,
				nick: state.nick,
				room: state.room,
			}));
		} catch (e) {
			/* storage disabled: reloads simply start over */
		}
	}

	function load() {
		try {
			const v = JSON.parse(sessionStorage.getItem(STORE_KEY));
			if (v && typeof v.session === 'string' &&
			    typeof v.nick === 'string')
				return v;
		} catch (e) {
			/* nothing usable */
		}
		return null;
	}

	/* ---- HTTP ---- */

	class ApiError extends Error {
		constructor(status, message) {
			super(message);
			this.status = status;	/* 0: no answer */
		}
	}

	async function api(method, path, body) {
		const ctl = new AbortController();
		const timer = setTimeout(() => ctl.abort(), REQUEST_TIMEOUT_MS);
		const opts = { method, cache: 'no-store', signal: ctl.signal };

		if (body !== undefined) {
			opts.headers = { 'Content-Type': 'application/json' };
			opts.body = JSON.stringify(body);
		}
		try {
			let res;
			try {
				res = await fetch(path, opts);
			} catch (e) {
				throw new ApiError(0, ctl.signal.aborted ?
					'the server did not answer in time' :
					'the server is unreachable');
			}
			let data = null;
			try {
				data = await res.json();
			} catch (e) {
				data = null;
			}
			if (!res.ok) {
				const why = data && typeof data.error === 'string' ?
					data.error : 'HTTP ' + res.status;
				throw new ApiError(res.status, why);
			}
			return data || {};
		} finally {
			clearTimeout(timer);
		}
	}

	/* Session requests run one at a time (the server answers 409 to a
	 * second command of a session while one runs). */
	let chain = Promise.resolve();

	function serial(fn) {
		const p = chain.then(fn, fn);
		chain = p.catch(() => {});
		return p;
	}

	function sessionPost(path, body) {
		return serial(() => api('POST', path,
			Object.assign({ session_id: state.session }, body)));
	}

	function isSessionGone(path, err) {
		if (err.status !== 404)
			return false;
		if (path !== '/api/message')
			return true;
		return /session/i.test(err.message) ||
			!/room/i.test(err.message);
	}

	/* A request of the session; when the server no longer knows the
	 * session, reconnects under the same nickname and tries once more. */
	async function call(path, body) {
		if (state.recovery && !await state.recovery)
			throw new ApiError(404, 'not connected');
		const sid = state.session;

		try {
			return await sessionPost(path, body);
		} catch (e) {
			if (!isSessionGone(path, e))
				throw e;
			if (state.session === sid)
				dropSession();
			if (!await recover(path + ' answered: ' + e.message))
				throw e;
			return await sessionPost(path, body);
		}
	}

	function sleep(ms) {
		return new Promise((resolve) => setTimeout(resolve, ms));
	}

	/* ---- small views ---- */

	function setText(node, text) {
		node.textContent = text;
	}

	let bannerTimer = null;

	function banner(text, kind) {
		clearTimeout(bannerTimer);
		if (!text) {
			ui.banner.hidden = true;
			return;
		}
		setText(ui.banner, text);
		ui.banner.dataset.kind = kind || 'info';
		ui.banner.hidden = false;
		if (kind !== 'error')
			bannerTimer = setTimeout(() => banner(null), 8000);
	}

	function showOutput(text, success) {
		setText(ui.cmdText, text);
		ui.cmdOutput.dataset.success = success ? 'true' : 'false';
		ui.cmdOutput.hidden = false;
	}

	const STREAM_TEXT = {
		idle: 'not in a room',
		connecting: 'connecting\u2026',
		live: 'live',
		reconnecting: 'reconnecting\u2026',
	};

	function setStreamState(s, detail) {
		ui.streamStatus.dataset.state = s;
		setText(ui.streamStatus, detail || STREAM_TEXT[s]);
		ui.streamStatus.title = detail || STREAM_TEXT[s];
	}

	function renderRoomHead() {
		setText(ui.roomTitle, state.room ? '#' + state.room : 'No room');
		ui.roomTitle.dataset.room = state.room || '';
		ui.leaveBtn.disabled = !state.room;
		ui.messageInput.placeholder = state.room ?
			'Message #' + state.room + ' (Enter sends; /help)' :
			'Join a room to chat; /help for commands';
		document.title = state.room ?
			'#' + state.room + ' \u2013 Baby Discord' : 'Baby Discord';
		for (const li of ui.roomList.children)
			li.classList.toggle('current',
				li.dataset.room === state.room);
	}

	/* ---- messages ---- */

	function nearBottom() {
		const m = ui.messages;
		return m.scrollHeight - m.scrollTop - m.clientHeight < 40;
	}

	function scrollDown(was) {
		if (was)
			ui.messages.scrollTop = ui.messages.scrollHeight;
	}

	function newView(room) {
		ui.messages.replaceChildren();
		state.view = { room, seqs: new Set(), maxSeq: -1 };
	}

	function formatTime(iso) {
		const d = new Date(iso);
		if (Number.isNaN(d.getTime()))
			return '';
		return d.toLocaleTimeString([], {
			hour: '2-digit', minute: '2-digit',
		});
	}

	function addNotice(text, kind) {
		const was = nearBottom();
		const li = document.createElement('li');
		li.className = 'notice' + (kind ? ' notice-' + kind : '');
		li.dataset.testid = 'system-notice';
		if (kind)
			li.dataset.kind = kind;
		li.textContent = text;
		ui.messages.appendChild(li);
		scrollDown(was);
	}

	function addMessage(m) {
		const v = state.view;
		const seq = m.seq;

		if (!v || !Number.isSafeInteger(seq) || v.seqs.has(seq))
			return;
		v.seqs.add(seq);

		const li = document.createElement('li');
		li.className = 'msg';
		li.dataset.testid = 'message';
		li.dataset.seq = String(seq);
		li.dataset.room = v.room;
		li.dataset.user = String(m.user);
		if (String(m.user).toLowerCase() === state.nick.toLowerCase())
			li.classList.add('mine');

		const head = document.createElement('div');
		head.className = 'msg-head';
		const who = document.createElement('span');
		who.className = 'msg-user';
		who.textContent = String(m.user);
		const when = document.createElement('time');
		when.className = 'msg-time';
		if (typeof m.created_at === 'string') {
			when.dateTime = m.created_at;
			when.title = m.created_at;
			when.textContent = formatTime(m.created_at);
		}
		head.append(who, when);

		const body = document.createElement('div');
		body.className = 'msg-content';
		body.dataset.testid = 'message-content';
		body.textContent = String(m.content);
		li.append(head, body);

		const was = nearBottom();
		if (seq > v.maxSeq) {
			ui.messages.appendChild(li);
			v.maxSeq = seq;
		} else {
			/* Older than what we have: before the first later one. */
			let after = null;
			for (const n of ui.messages.querySelectorAll('li.msg')) {
				if (Number(n.dataset.seq) > seq) {
					after = n;
					break;
				}
			}
			ui.messages.insertBefore(li, after);
		}
		scrollDown(was);
	}

	/* ---- the stream ---- */

	function closeStream() {
		state.streamGen++;
		if (state.es) {
			state.es.close();
			state.es = null;
		}
	}

	function parse(ev) {
		try {
			return JSON.parse(ev.data);
		} catch (e) {
			return null;
		}
	}

	/* Opens the current room's stream. Same room as the list: resume
	 * after its newest seq; else a fresh list and the history. */
	function openStream() {
		const room = state.room;
		let url = '/api/messages/' + encodeURIComponent(room) +
			'?session_id=' + encodeURIComponent(state.session);

		closeStream();
		if (state.view && state.view.room === room)
			url += '&last_event_id=' + Math.max(state.view.maxSeq, 0);
		else
			newView(room);

		const gen = state.streamGen;
		const es = new EventSource(url);
		const mine = () => gen === state.streamGen;

		state.es = es;
		setStreamState('connecting');
		es.onopen = () => {
			if (!mine())
				return;
			state.failures = 0;
			setStreamState('live');
		};
		es.onerror = () => {
			/* Unloading closes the stream too: not a refusal. */
			if (!mine() || state.leaving)
				return;
			if (es.readyState === EventSource.CONNECTING) {
				/* The browser retries and sends
				 * Last-Event-ID itself. */
				setStreamState('reconnecting');
				return;
			}
			/* Refused (an HTTP error): the session or the
			 * membership is gone. */
			closeStream();
			state.failures++;
			recover('the room\'s stream was refused');
		};
		es.addEventListener('message', (ev) => {
			const m = parse(ev);
			if (!mine() || !m || (m.room && m.room !== room))
				return;
			addMessage(m);
		});
		es.addEventListener('system', (ev) => {
			const d = parse(ev);
			if (!mine() || !d || typeof d.text !== 'string')
				return;
			if (d.room && d.room !== room)
				return;
			addNotice(d.text);
		});
		es.addEventListener('reset', (ev) => {
			const d = parse(ev) || {};
			if (!mine())
				return;
			newView(room);
			let text = 'History truncated';
			if (Number.isSafeInteger(d.missed) && d.missed > 0)
				text += ': ' + d.missed + ' message' +
					(d.missed === 1 ? '' : 's') +
					' could not be shown';
			addNotice(text, 'reset');
		});
	}

	function enterRoom(room) {
		const same = state.room === room;

		state.room = room;
		save();
		renderRoomHead();
		ui.chatView.classList.remove('show-sidebar');
		if (same && state.es &&
		    state.es.readyState !== EventSource.CLOSED)
			return;
		openStream();
	}

	function leaveRoomView() {
		closeStream();
		state.room = null;
		save();
		renderRoomHead();
		setStreamState('idle');
	}

	/* ---- session life ---- */

	function dropSession() {
		state.session = null;
		save();
	}

	/* The session is gone or a stream was refused: get a session (the same
	 * nickname again if needed), join the current room again and resume its
	 * stream after the last seq shown. Waits out an unreachable server.
	 * Resolves true when the chat can go on, false when it went back to
	 * the connect screen. One at a time. */
	function recover(why) {
		if (!state.recovery) {
			state.recovery = doRecover(why).finally(() => {
				state.recovery = null;
			});
		}
		return state.recovery;
	}

	async function doRecover(why) {
		let delay = state.failures > 1 ?
			Math.min(BACKOFF_MIN_MS << state.failures,
				 BACKOFF_MAX_MS) : 0;
		let rejoined = false;

		closeStream();
		if (state.room)
			setStreamState('reconnecting');
		for (;;) {
			if (delay)
				await sleep(delay);
			if (!state.active)
				return false;
			delay = Math.min(Math.max(delay * 2, BACKOFF_MIN_MS),
					 BACKOFF_MAX_MS);
			try {
				if (!state.session) {
					const d = await api('POST', '/api/connect',
						{ nickname: state.nick });
					if (!state.active) {
						/* disconnected meanwhile */
						api('POST', '/api/disconnect',
						    { session_id: d.session_id })
							.catch(() => {});
						return false;
					}
					state.session = d.session_id;
					state.nick = d.nickname || state.nick;
					save();
					setText(ui.meNick, state.nick);
					banner('The server no longer knew your ' +
						'session (' + why + '; did it ' +
						'restart?): you are connected ' +
						'again as ' + state.nick + '.');
				} else if (state.room) {
					/* Is it the session or the room? */
					await sessionPost('/api/command',
						{ command: '/help' });
				}
				if (state.room && !rejoined) {
					const r = await sessionPost('/api/command',
						{ command: '/join ' + state.room });
					if (!r.success &&
					    /database|try again/i.test(r.message))
						continue;	/* later */
					if (!r.success) {
						showOutput(r.message || 'join failed',
							   false);
						leaveRoomView();
						return true;
					}
					rejoined = true;
				}
				if (state.room)
					openStream();
				refreshRooms();
				return true;
			} catch (e) {
				if (e.status === 404 && state.session) {
					dropSession();
					rejoined = false;
					delay = 0;
					continue;
				}
				if (e.status === 0 || e.status >= 500 ||
				    (e.status === 409 && state.session))
					continue;	/* try again later */
				showConnect('Your session ended and ' + state.nick +
					' could not reconnect: ' + e.message);
				return false;
			}
		}
	}

	function startRoomsTimer() {
		clearInterval(state.roomsTimer);
		state.roomsTimer = setInterval(() => {
			if (!document.hidden)
				refreshRooms();
		}, ROOMS_EVERY_MS);
	}

	function showChat() {
		state.active = true;
		ui.connectView.hidden = true;
		ui.chatView.hidden = false;
		ui.me.hidden = false;
		setText(ui.meNick, state.nick);
		ui.chatView.classList.toggle('show-sidebar', !state.room);
		renderRoomHead();
		startRoomsTimer();
		refreshRooms();
		if (state.room)
			openStream();
		else
			setStreamState('idle');
		ui.messageInput.focus();
	}

	function showConnect(error) {
		state.active = false;
		closeStream();
		clearInterval(state.roomsTimer);
		state.session = null;
		state.room = null;
		state.view = null;
		save();
		ui.messages.replaceChildren();
		ui.cmdOutput.hidden = true;
		ui.chatView.hidden = true;
		ui.me.hidden = true;
		ui.connectView.hidden = false;
		ui.nickInput.value = state.nick || ui.nickInput.value;
		setText(ui.connectError, error || '');
		setStreamState('idle');
		document.title = 'Baby Discord';
		ui.nickInput.focus();
	}

	async function connect(nick) {
		setText(ui.connectError, '');
		ui.connectBtn.disabled = true;
		try {
			const d = await api('POST', '/api/connect',
				{ nickname: nick });
			state.session = d.session_id;
			state.nick = d.nickname || nick;
			state.room = null;
			state.view = null;
			save();
			showChat();
		} catch (e) {
			let why = e.message;
			if (e.status === 409)
				why = 'The nickname ' + nick + ' is taken: ' + why;
			setText(ui.connectError, why);
		} finally {
			ui.connectBtn.disabled = false;
		}
	}

	async function disconnect() {
		const sid = state.session;

		closeStream();
		if (sid) {
			try {
				await serial(() => api('POST', '/api/disconnect',
					{ session_id: sid }));
			} catch (e) {
				/* gone already, or unreachable: either way */
			}
		}
		showConnect('');
	}

	/* ---- rooms ---- */

	let roomsSeq = 0;	/* requests made */
	let roomsShown = 0;	/* the newest one shown */

	async function refreshRooms() {
		const mine = ++roomsSeq;
		let d;

		try {
			d = await api('GET', '/api/rooms');
		} catch (e) {
			return;
		}
		if (mine < roomsShown || !Array.isArray(d.rooms))
			return;
		roomsShown = mine;
		const items = d.rooms.map((r) => {
			const li = document.createElement('li');
			li.dataset.testid = 'room-item';
			li.dataset.room = String(r.name);
			const b = document.createElement('button');
			b.type = 'button';
			b.className = 'room-btn';
			const name = document.createElement('span');
			name.className = 'room-name';
			name.textContent = '#' + String(r.name);
			const counts = document.createElement('span');
			counts.className = 'room-counts';
			counts.dataset.testid = 'room-counts';
			counts.textContent = Number(r.members) + ' members \u00b7 ' +
				Number(r.online) + ' online';
			b.append(name, counts);
			b.addEventListener('click', () =>
				command('/join ' + String(r.name)));
			li.appendChild(b);
			return li;
		});
		ui.roomList.replaceChildren(...items);
		ui.roomsEmpty.hidden = items.length > 0;
		renderRoomHead();
	}

	/* ---- commands and messages ---- */

	async function command(line) {
		const words = line.trim().split(/\s+/);
		const verb = words[0].toLowerCase();
		const arg = words[1] || '';
		let r;

		if (verb === '/quit' || verb === '/disconnect') {
			await disconnect();
			return true;
		}
		try {
			r = await call('/api/command', { command: line.trim() });
		} catch (e) {
			showOutput(line.trim() + ': ' + e.message, false);
			return false;
		}
		const msg = typeof r.message === 'string' ? r.message : '';
		showOutput(msg || (r.success ? 'OK' : 'failed'), !!r.success);
		if (r.success) {
			let m;
			switch (verb) {
			case '/nick':
				m = /You are now (\S+)/.exec(msg);
				state.nick = m ? m[1] : arg;
				setText(ui.meNick, state.nick);
				save();
				break;
			case '/create':
			case '/join':
				m = /You joined (\S+) \(/.exec(msg);
				enterRoom(m ? m[1] : arg);
				break;
			case '/leave':
				leaveRoomView();
				break;
			}
		}
		refreshRooms();
		return !!r.success;
	}

	async function sendMessage(text) {
		if (!state.room) {
			showOutput('You are not in a room: /join <room> or ' +
				   '/create <room> first', false);
			return false;
		}
		try {
			await call('/api/message',
				   { room: state.room, content: text });
			return true;
		} catch (e) {
			showOutput('Message not sent: ' + e.message, false);
			return false;
		}
	}

	/* ---- wiring ---- */

	function onSubmit(form, fn) {
		form.addEventListener('submit', (ev) => {
			ev.preventDefault();
			fn();
		});
	}

	onSubmit(ui.connectForm, () => {
		const nick = ui.nickInput.value.trim();
		if (nick)
			connect(nick);
	});

	onSubmit(ui.composer, async () => {
		const input = ui.messageInput;
		const text = input.value;

		if (!text.trim())
			return;
		const ok = text.startsWith('/') ?
			await command(text) : await sendMessage(text);
		if (ok && input.value === text)
			input.value = '';
		input.focus();
	});

	onSubmit(ui.createForm, async () => {
		const name = ui.createInput.value.trim();
		if (name && await command('/create ' + name))
			ui.createInput.value = '';
	});

	onSubmit(ui.joinForm, async () => {
		const name = ui.joinInput.value.trim();
		if (name && await command('/join ' + name))
			ui.joinInput.value = '';
	});

	onSubmit(ui.nickForm, async () => {
		const nick = ui.newNickInput.value.trim();
		if (nick && await command('/nick ' + nick))
			ui.newNickInput.value = '';
	});

	ui.whoBtn.addEventListener('click', () => command('/list'));
	ui.leaveBtn.addEventListener('click', () => command('/leave'));
	ui.disconnectBtn.addEventListener('click', () => disconnect());
	ui.roomsRefresh.addEventListener('click', () => refreshRooms());
	ui.cmdClose.addEventListener('click', () => {
		ui.cmdOutput.hidden = true;
	});
	el('sidebar-toggle').addEventListener('click', () => {
		ui.chatView.classList.toggle('show-sidebar');
	});

	/* A navigation away (reload included) cancels the stream as soon as
	 * it starts: ignore that error. Should the page stay after all, it
	 * is itself again a second later. */
	window.addEventListener('beforeunload', () => {
		state.leaving = true;
		setTimeout(() => {
			state.leaving = false;
		}, 1000);
	});

	/* A reload keeps the session: the stream tells whether it is still
	 * known (a refused stream recovers as above). */
	const saved = load();
	if (saved) {
		state.session = saved.session;
		state.nick = saved.nick;
		state.room = typeof saved.room === 'string' ? saved.room : null;
		showChat();
	} else {
		showConnect('');
	}
})();
