/* Switchboard web chat widget. Plain ES2019, no dependencies, no build step.
 * Embed: <script src="https://<host>/webchat/<account_id>/widget.js" async></script>
 * Protocol: services/webchat/PROTOCOL.md. Optional: data-open="true" on the script tag opens the
 * panel on load; window.SwitchboardWebchatSettings = {user_id, user_hash, name, email, phone}
 * skips the pre-chat form for a logged-in user. Debug: window.SwitchboardWebchat.state(). */
(function () {
  'use strict';
  var HOST_ID = 'switchboard-webchat';
  if (document.getElementById(HOST_ID) || (window.SwitchboardWebchat && window.SwitchboardWebchat.loaded)) return;

  // ---- where we come from -------------------------------------------------------------------
  var PATH_RE = /^(.*\/webchat\/([^/]+)\/)widget\.js$/;
  function pathOf(src) { try { return new URL(src, location.href).pathname; } catch (e) { return ''; } }
  function findScript() {
    var s = document.currentScript; // still set for async classic scripts while they run
    if (s && s.src && PATH_RE.test(pathOf(s.src))) return s;
    var all = document.querySelectorAll('script[src]'); // covers script[src*="/webchat/"][src$="widget.js"]
    for (var i = all.length - 1; i >= 0; i--) if (PATH_RE.test(pathOf(all[i].src))) return all[i];
    return null;
  }
  var script = findScript();
  if (!script) { console.warn('[switchboard-webchat] cannot find the widget <script> (…/webchat/<account>/widget.js)'); return; }
  var srcUrl = new URL(script.src, location.href);
  var pm = PATH_RE.exec(srcUrl.pathname);
  var BASE = srcUrl.origin + pm[1];
  var ACCOUNT = decodeURIComponent(pm[2]);
  var KEY = 'switchboard-webchat:' + ACCOUNT;
  var OPEN_KEY = KEY + ':open', READ_KEY = KEY + ':read', USER_KEY = KEY + ':user';
  var AUTO_OPEN = script.getAttribute('data-open') === 'true';
  function log() { try { console.info.apply(console, ['[switchboard-webchat]'].concat([].slice.call(arguments))); } catch (e) { /* */ } }

  var mem = {};
  function sGet(store, k) { try { return window[store].getItem(k); } catch (e) { return mem[store + k] || null; } }
  function sSet(store, k, v) {
    try { if (v == null) window[store].removeItem(k); else window[store].setItem(k, String(v)); }
    catch (e) { if (v == null) delete mem[store + k]; else mem[store + k] = String(v); }
  }

  function firstTransport() { return window.WebSocket && sGet('sessionStorage', KEY + ':rest') !== '1' ? 'ws' : 'rest'; }

  // ---- state ------------------------------------------------------------------------------------
  var S = {
    config: null, token: sGet('localStorage', KEY), visitorId: null, view: 'loading', open: false,
    transport: firstTransport(), conn: 'idle', ws: null, ready: false,
    wsFailures: 0, attempt: 0, gen: 0, polling: false, resyncing: false,
    seen: {}, lastSeq: 0, maxSeq: 0, agentReadSeq: 0, maxAgentSeq: 0,
    deliveredSent: 0, readSent: 0, readStored: +(sGet('localStorage', READ_KEY) || 0), unread: 0,
    pending: new Map(), typingOn: false, typingSentAt: 0
  };
  var T = {}; // timers
  var UI = {};
  var wantOpen = AUTO_OPEN || sGet('sessionStorage', OPEN_KEY) === '1';

  // ---- helpers ----------------------------------------------------------------------------------
  function h(tag, attrs, kids) {
    var el = document.createElement(tag);
    for (var k in attrs || {}) {
      var v = attrs[k];
      if (v == null || v === false) continue;
      if (k === 'text') el.textContent = v;
      else if (k === 'testid') el.setAttribute('data-testid', v);
      else if (k.slice(0, 2) === 'on') el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    (kids || []).forEach(function (c) { if (c) el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return el;
  }
  function icon(path) { // static markup only, never user data
    var s = h('span', { class: 'ic', 'aria-hidden': 'true' });
    s.innerHTML = '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">' + path + '</svg>';
    return s;
  }
  var ICONS = {
    chat: '<path d="M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z"/>',
    close: '<path d="M18 6 6 18M6 6l12 12"/>',
    clip: '<path d="m21.4 11.1-9.2 9.2a6 6 0 0 1-8.5-8.5l9.2-9.2a4 4 0 0 1 5.7 5.7l-9.2 9.2a2 2 0 0 1-2.8-2.8l8.5-8.5"/>',
    send: '<path d="M22 2 11 13M22 2l-7 20-4-9-9-4z"/>'
  };
  function uuid() {
    if (window.crypto && crypto.randomUUID) { try { return crypto.randomUUID(); } catch (e) { /* insecure context */ } }
    var b = new Uint8Array(16);
    if (window.crypto && crypto.getRandomValues) crypto.getRandomValues(b); else for (var i = 0; i < 16; i++) b[i] = Math.random() * 256 | 0;
    b[6] = b[6] & 15 | 64; b[8] = b[8] & 63 | 128;
    var x = [].map.call(b, function (n) { return (n + 256).toString(16).slice(1); }).join('');
    return x.slice(0, 8) + '-' + x.slice(8, 12) + '-' + x.slice(12, 16) + '-' + x.slice(16, 20) + '-' + x.slice(20);
  }
  function chars(s) { return Array.from(s).length; }
  function isAgentSide(a) { return a === 'agent' || a === 'bot'; }
  function limits() { return (S.config && S.config.limits) || {}; }
  function safeUrl(u) {
    try { var x = new URL(u, BASE); return x.protocol === 'https:' || x.protocol === 'http:' ? x.href : null; } catch (e) { return null; }
  }
  function fmtSize(n) { return n >= 1048576 ? (n / 1048576).toFixed(1) + ' MB' : n >= 1024 ? Math.round(n / 1024) + ' KB' : n + ' B'; }
  function fmtTime(t) {
    var d = t ? new Date(t) : new Date();
    return isNaN(d) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  function api(method, path, o) {
    o = o || {};
    var headers = {}, body;
    if (o.auth) headers.Authorization = 'Bearer ' + S.token;
    if (o.raw) { body = o.raw; headers['Content-Type'] = o.type || 'application/octet-stream'; }
    else if (o.body !== undefined) { body = JSON.stringify(o.body); headers['Content-Type'] = 'application/json'; }
    var ctl = window.AbortController ? new AbortController() : null;
    var timer = ctl && setTimeout(function () { ctl.abort(); }, o.timeout || 30000);
    return fetch(BASE + path, { method: method, headers: headers, body: body, credentials: 'omit', mode: 'cors', signal: ctl && ctl.signal })
      .then(function (res) {
        return res.text().then(function (txt) {
          clearTimeout(timer);
          var data = null;
          try { data = txt ? JSON.parse(txt) : null; } catch (e) { /* not JSON */ }
          return { status: res.status, data: data, headers: res.headers };
        });
      }, function (e) { clearTimeout(timer); throw e; });
  }
  function errOf(r) { return (r && r.data && r.data.error) || { code: 'http_' + (r ? r.status : 0), message: '' }; }
  var ERRORS = {
    field_required: 'This field is required.', invalid_field: 'Please check this value.',
    message_too_large: 'That message is too long.', empty_message: 'The message is empty.',
    unknown_attachment: 'The attachment could not be found. Please upload it again.',
    rate_limited: 'You are sending messages too quickly. Retrying…', too_many_sessions: 'Too many new chats from your network. Please try again later.',
    origin_not_allowed: 'This site is not allowed to use this chat.', session_invalid: 'Your chat session has expired. Please start again.',
    identity_not_verified: 'We could not verify your account. Please introduce yourself below.', invalid_frame: 'The chat sent something the server did not understand.'
  };
  function errText(e) { return (e && (e.message || ERRORS[e.code])) || 'Something went wrong. Please try again.'; }

  // ---- UI -------------------------------------------------------------------------------------
  var CSS = ':host{all:initial}*{box-sizing:border-box}[hidden]{display:none!important}' +
    '.root{position:fixed;right:20px;bottom:20px;z-index:2147483000;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1f2328;display:flex;flex-direction:column;align-items:flex-end;gap:12px}' +
    '.ic{display:flex}.ic svg{width:22px;height:22px}' +
    '.launcher{width:58px;height:58px;border-radius:50%;border:0;background:var(--p);color:var(--pt);cursor:pointer;box-shadow:0 6px 20px rgba(0,0,0,.25);display:flex;align-items:center;justify-content:center;position:relative}' +
    '.launcher .ic svg{width:26px;height:26px}' +
    '.badge{position:absolute;top:-3px;right:-3px;min-width:20px;height:20px;padding:0 6px;border-radius:10px;background:#d93025;color:#fff;font-size:12px;font-weight:600;line-height:20px;text-align:center}' +
    '.panel{width:370px;height:580px;max-height:calc(100vh - 110px);background:#fff;border-radius:14px;box-shadow:0 12px 40px rgba(0,0,0,.22);display:flex;flex-direction:column;overflow:hidden}' +
    '.head{background:var(--p);color:var(--pt);padding:14px 12px 14px 16px;display:flex;align-items:center;gap:10px}' +
    '.title{font-weight:600;font-size:16px;flex:1;min-width:0;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}' +
    '.status{font-size:12px;opacity:.92;display:flex;align-items:center;gap:5px;white-space:nowrap}' +
    '.status:before{content:"";width:8px;height:8px;border-radius:50%;background:#9aa0a6}' +
    '.status[data-state=online]:before{background:#34c759}.status[data-state=connecting]:before,.status[data-state=reconnecting]:before{background:#f4b400}' +
    '.status[data-state=unavailable]:before{background:#d93025}.status[data-state=idle]{display:none}' +
    '.x{background:none;border:0;color:inherit;cursor:pointer;padding:2px;opacity:.85}' +
    '.banner{background:#fdecea;color:#8a1c13;padding:8px 12px;font-size:13px;display:flex;gap:8px;align-items:flex-start;border-bottom:1px solid #f5c6c0}' +
    '.banner span{flex:1}.banner button{background:none;border:0;color:inherit;cursor:pointer;font-size:16px;line-height:1}' +
    '.list{flex:1;overflow-y:auto;padding:14px 12px;display:flex;flex-direction:column;gap:8px;background:#f6f7f9}' +
    '.msg{display:flex;flex-direction:column;max-width:82%;align-items:flex-start;align-self:flex-start}' +
    '.msg.visitor{align-self:flex-end;align-items:flex-end}.msg.system{align-self:center;max-width:92%;align-items:center}' +
    '.who{font-size:11px;color:#5f6368;margin:0 6px 2px}' +
    '.bubble{padding:8px 12px;border-radius:16px;background:#fff;border:1px solid #e3e5e8;overflow-wrap:anywhere;max-width:100%}' +
    '.visitor .bubble{background:var(--p);color:var(--pt);border-color:transparent;border-bottom-right-radius:4px}' +
    '.agent .bubble,.bot .bubble,.greeting .bubble{border-bottom-left-radius:4px}' +
    '.system .bubble{background:transparent;border:0;color:#5f6368;font-size:12px;text-align:center;padding:2px 8px}' +
    '.text{white-space:pre-wrap}.bubble a{color:inherit;text-decoration:underline}' +
    '.bubble.media{background:none;border:0;padding:0}.att{display:block;margin-top:4px}.att img{display:block;max-width:220px;max-height:180px;border-radius:8px;background:#eee}' +
    '.meta{font-size:11px;color:#80868b;margin:2px 6px 0}.msg[data-status=failed] .meta{color:#d93025}.msg[data-pending] .bubble{opacity:.75}' +
    '.chips{display:flex;flex-wrap:wrap;gap:6px;margin-top:6px}' +
    '.chip{border:1px solid var(--p);color:var(--p);background:#fff;border-radius:16px;padding:5px 12px;cursor:pointer;font:inherit;font-size:13px}.chip:disabled{opacity:.5;cursor:default}' +
    '.typing{padding:3px 16px 6px;font-size:12px;color:#5f6368;font-style:italic;background:#f6f7f9}' +
    '.foot{border-top:1px solid #e3e5e8;background:#fff}' +
    '.composer{display:flex;align-items:flex-end;gap:6px;padding:10px}' +
    'textarea{flex:1;resize:none;border:1px solid #d0d4d9;border-radius:19px;padding:8px 14px;font:inherit;height:38px;max-height:120px;outline:none;color:inherit;background:#fff}' +
    'textarea:focus,.field input:focus{border-color:var(--p)}' +
    '.ib{width:38px;height:38px;flex:none;border:0;border-radius:50%;background:transparent;color:#5f6368;cursor:pointer;display:flex;align-items:center;justify-content:center}' +
    '.ib .ic svg{width:20px;height:20px}.send{background:var(--p);color:var(--pt)}.ib:disabled{opacity:.5;cursor:default}' +
    '.count{font-size:11px;color:#80868b;padding:0 16px 6px;text-align:right}.count.over{color:#d93025}' +
    '.prechat{padding:14px 16px 16px;display:flex;flex-direction:column;gap:10px}.prechat p{margin:0;color:#3c4043}' +
    '.field label{display:block;font-size:12px;font-weight:600;margin-bottom:4px;color:#3c4043}.req{color:#d93025}.opt{font-weight:400;color:#80868b}' +
    '.field input{width:100%;border:1px solid #d0d4d9;border-radius:8px;padding:8px 10px;font:inherit;color:inherit;background:#fff;outline:none}' +
    '.field input[aria-invalid=true]{border-color:#d93025}.ferr{color:#d93025;font-size:12px;margin-top:3px}' +
    '.primary{background:var(--p);color:var(--pt);border:0;border-radius:8px;padding:10px;font:inherit;font-weight:600;cursor:pointer}.primary:disabled{opacity:.6;cursor:default}' +
    '.note{padding:18px 16px;color:#5f6368;text-align:center}' +
    '@media (max-width:480px){.root{right:12px;bottom:12px}.panel{position:fixed;inset:0;width:auto;height:auto;max-height:none;border-radius:0}.root.open .launcher{display:none}}';

  function contrast(hex) {
    var n = parseInt(hex.slice(1), 16);
    return (0.299 * (n >> 16 & 255) + 0.587 * (n >> 8 & 255) + 0.114 * (n & 255)) > 165 ? '#111' : '#fff';
  }

  function buildUI() {
    var c = S.config;
    var color = /^#[0-9a-f]{6}$/i.test(c.primary_color || '') ? c.primary_color : '#2563eb';
    var host = h('div', { id: HOST_ID });
    var root = host.attachShadow({ mode: 'open' });
    var css = CSS + '.root{--p:' + color + ';--pt:' + contrast(color) + '}'; // color is validated above
    try { // a constructed sheet also works under a CSP without style-src 'unsafe-inline'
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(css);
      root.adoptedStyleSheets = [sheet];
    } catch (e) { root.appendChild(h('style', { text: css })); }
    UI.root = h('div', { class: 'root' });
    var title = c.title || 'Chat with us';
    UI.status = h('div', { class: 'status', testid: 'connection-status', 'data-state': 'idle', 'aria-live': 'polite' });
    UI.bannerText = h('span');
    UI.banner = h('div', { class: 'banner', testid: 'error-banner', role: 'alert', hidden: true }, [UI.bannerText,
      h('button', { type: 'button', 'aria-label': 'Dismiss', text: '\u00d7', onclick: hideError })]);
    UI.list = h('div', { class: 'list', testid: 'message-list', role: 'log', 'aria-live': 'polite' });
    if (c.greeting) UI.list.appendChild(h('div', { class: 'msg agent greeting', testid: 'message', 'data-author': 'greeting' },
      [h('div', { class: 'bubble' }, [h('div', { class: 'text', testid: 'message-text', text: c.greeting })])]));
    UI.typing = h('div', { class: 'typing', testid: 'typing-indicator', hidden: true, text: 'Agent is typing\u2026' });
    UI.foot = h('div', { class: 'foot' });
    var close = h('button', { type: 'button', class: 'x', testid: 'close', 'aria-label': 'Close chat', onclick: function () { setOpen(false); } }, [icon(ICONS.close)]);
    UI.panel = h('div', { class: 'panel', testid: 'panel', role: 'dialog', 'aria-label': title, hidden: true }, [
      h('div', { class: 'head' }, [h('div', { class: 'title', text: title }), UI.status, close]),
      UI.banner, UI.list, UI.typing, UI.foot]);
    UI.badge = h('span', { class: 'badge', hidden: true });
    UI.launcherIcon = icon(ICONS.chat);
    UI.launcher = h('button', { type: 'button', class: 'launcher', testid: 'launcher', 'aria-label': 'Open chat', 'aria-expanded': 'false',
      onclick: function () { setOpen(!S.open); } }, [UI.launcherIcon, UI.badge]);
    UI.root.appendChild(UI.panel);
    UI.root.appendChild(UI.launcher);
    root.appendChild(UI.root);
    UI.panel.addEventListener('keydown', function (e) { if (e.key === 'Escape') setOpen(false); });
    document.body.appendChild(host);
  }

  function setOpen(o) {
    if (!UI.panel) { wantOpen = o; return; }
    S.open = !!o;
    UI.panel.hidden = !S.open;
    UI.root.classList.toggle('open', S.open);
    UI.launcher.setAttribute('aria-expanded', String(S.open));
    UI.launcher.setAttribute('aria-label', S.open ? 'Close chat' : 'Open chat');
    UI.launcherIcon.replaceWith(UI.launcherIcon = icon(S.open ? ICONS.close : ICONS.chat));
    sSet('sessionStorage', OPEN_KEY, S.open ? '1' : null);
    if (S.open) {
      setUnread(0);
      scrollBottom();
      var f = UI.foot.querySelector('textarea,input');
      if (f) try { f.focus({ preventScroll: true }); } catch (e) { /* */ }
      ack();
    }
  }
  function setUnread(n) { S.unread = n; UI.badge.hidden = !n; UI.badge.textContent = n > 9 ? '9+' : String(n); }

  var CONN_TEXT = { idle: '', connecting: 'Connecting\u2026', online: 'Online', reconnecting: 'Reconnecting\u2026', unavailable: 'Unavailable' };
  function setConn(c) {
    S.conn = c;
    UI.status.setAttribute('data-state', c);
    UI.status.setAttribute('data-transport', S.transport);
    UI.status.textContent = CONN_TEXT[c] || c;
  }
  function showError(msg, ms) {
    if (!UI.banner) return log(msg);
    UI.bannerText.textContent = msg;
    UI.banner.hidden = false;
    clearTimeout(T.banner);
    if (ms) T.banner = setTimeout(hideError, ms);
  }
  function hideError() { clearTimeout(T.banner); if (UI.banner) UI.banner.hidden = true; }
  function scrollBottom() { if (UI.list) UI.list.scrollTop = UI.list.scrollHeight; }

  function setView(v) {
    S.view = v;
    UI.foot.textContent = '';
    UI.input = null;
    if (v === 'prechat') UI.foot.appendChild(buildPrechat());
    else if (v === 'chat') UI.foot.appendChild(buildComposer());
    else if (v === 'unavailable') UI.foot.appendChild(h('div', { class: 'note', testid: 'unavailable', text: 'Chat is unavailable right now. Please try again later.' }));
    else UI.foot.appendChild(h('div', { class: 'note', text: 'Loading\u2026' }));
    if (v !== 'chat') setConn(v === 'unavailable' ? 'unavailable' : 'idle');
  }

  // ---- pre-chat form -------------------------------------------------------------------------------
  var FIELDS = [
    { key: 'name', label: 'Name', type: 'text', ac: 'name', def: 'optional' },
    { key: 'email', label: 'E-mail', type: 'email', ac: 'email', def: 'optional' },
    { key: 'phone', label: 'Phone', type: 'tel', ac: 'tel', def: 'hidden', ph: '+14155550100' }
  ];
  function prechatMode(k) {
    var f = FIELDS.filter(function (x) { return x.key === k; })[0];
    var m = ((S.config && S.config.prechat) || {})[k];
    return m === 'required' || m === 'optional' || m === 'hidden' ? m : f.def;
  }
  function buildPrechat() {
    var inputs = {}, errs = {};
    var form = h('form', { class: 'prechat', testid: 'prechat-form', novalidate: true });
    var shown = FIELDS.filter(function (f) { return prechatMode(f.key) !== 'hidden'; });
    form.appendChild(h('p', { text: shown.length ? 'Tell us who you are and we will be right with you.' : 'Start a conversation with us.' }));
    shown.forEach(function (f) {
      var req = prechatMode(f.key) === 'required', id = 'sbwc-' + f.key;
      inputs[f.key] = h('input', { id: id, name: f.key, type: f.type, autocomplete: f.ac, placeholder: f.ph, testid: 'prechat-' + f.key,
        required: req, 'aria-required': String(req), 'aria-describedby': id + '-err', maxlength: '200' });
      errs[f.key] = h('div', { class: 'ferr', id: id + '-err', testid: 'prechat-' + f.key + '-error', hidden: true });
      form.appendChild(h('div', { class: 'field' }, [
        h('label', { for: id }, [f.label, req ? h('span', { class: 'req', 'aria-hidden': 'true', text: ' *' }) : h('span', { class: 'opt', text: ' (optional)' })]),
        inputs[f.key], errs[f.key]]));
    });
    var submit = h('button', { type: 'submit', class: 'primary', testid: 'prechat-submit', text: 'Start chat' });
    form.appendChild(submit);
    function fieldError(k, msg) {
      if (!errs[k]) { showError(msg); return; }
      errs[k].textContent = msg || ''; errs[k].hidden = !msg;
      inputs[k].setAttribute('aria-invalid', msg ? 'true' : 'false');
    }
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      hideError();
      var body = {}, first = null;
      shown.forEach(function (f) {
        var v = inputs[f.key].value.trim(), msg = '';
        if (f.key === 'phone' && v) v = v.replace(/[\s().-]/g, '');
        if (!v && prechatMode(f.key) === 'required') msg = 'Please enter your ' + f.label.toLowerCase() + '.';
        else if (v && f.key === 'email' && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v)) msg = 'Please enter a valid e-mail address.';
        else if (v && f.key === 'phone' && !/^\+[1-9]\d{6,14}$/.test(v)) msg = 'Please enter the number in international format, e.g. +14155550100.';
        fieldError(f.key, msg);
        if (msg && !first) first = inputs[f.key];
        if (v) body[f.key] = v;
      });
      if (first) { first.focus(); return; }
      submit.disabled = true;
      createSession(body).then(function (r) {
        submit.disabled = false;
        if (r.status === 200 || r.status === 201) return acceptSession(r.data);
        var err = errOf(r);
        if (err.field && inputs[err.field]) fieldError(err.field, errText(err));
        else if (r.status === 429) showError(ERRORS.too_many_sessions + retryAfter(r));
        else if (r.status === 403) { showError(errText(err)); }
        else showError(errText(err));
      }, function () { submit.disabled = false; showError('Cannot reach the chat server. Please check your connection and try again.'); });
    });
    return form;
  }
  function retryAfter(r) { var s = r.headers && +r.headers.get('Retry-After'); return s ? ' (retry in ' + s + ' s)' : ''; }
  function createSession(body) { return api('POST', 'sessions', { body: body }); }

  // ---- session ----------------------------------------------------------------------------------
  function identity() {
    var st = window.SwitchboardWebchatSettings;
    return st && st.user_id && st.user_hash ? st : null;
  }
  function startSession() {
    // A stored session belongs to the user signed in when it started (or to no one): after a
    // sign-out or a user switch on a shared browser it is not resumed.
    var current = identity(), owner = sGet('localStorage', USER_KEY) || '';
    if (S.token && owner !== (current ? String(current.user_id) : '')) forgetSession();
    if (S.token) return resumeSession();
    var id = identity();
    if (!id || S.identityFailed) return setView('prechat');
    setView('loading');
    var body = { user_id: String(id.user_id), user_hash: String(id.user_hash) };
    ['name', 'email', 'phone'].forEach(function (k) { if (id[k]) body[k] = String(id[k]); });
    createSession(body).then(function (r) {
      if (r.status === 200 || r.status === 201) return acceptSession(r.data);
      S.identityFailed = true;
      showError(errText(errOf(r)));
      setView('prechat');
    }, function () { retrySoon(startSession); });
  }
  function resumeSession() {
    setView('loading');
    var gen = S.gen;
    var body = { session_token: S.token }, signedIn = identity();
    if (signedIn) { body.user_id = String(signedIn.user_id); body.user_hash = String(signedIn.user_hash); }
    api('POST', 'sessions', { body: body }).then(function (r) {
      if (gen !== S.gen) return;
      if (r.status === 200 || r.status === 201) return acceptSession(r.data);
      if (r.status === 401) return forgetSession();
      if (r.status === 403) return showUnavailable();
      if (r.status === 400) return forgetSession();
      retrySoon(resumeSession, r.status === 429 ? (+r.headers.get('Retry-After') || 5) * 1000 : 0);
    }, function () { if (gen === S.gen) retrySoon(resumeSession); });
  }
  function retrySoon(fn, ms) {
    var base = Math.min(30000, 1000 * Math.pow(2, S.attempt++));
    showError('Cannot reach the chat server. Retrying\u2026');
    clearTimeout(T.retry);
    T.retry = setTimeout(fn, ms || base / 2 + Math.random() * base / 2);
  }
  function acceptSession(d) {
    if (!d || !d.session_token) return showError('The chat server sent an unexpected answer.');
    hideError();
    S.attempt = 0;
    S.token = d.session_token;
    sSet('localStorage', KEY, S.token);
    var signedIn = identity();
    sSet('localStorage', USER_KEY, signedIn ? String(signedIn.user_id) : null);
    S.visitorId = d.visitor_id || S.visitorId;
    setAgentRead(d.agent_read_seq);
    scheduleRefresh(d.expires_at);
    setView('chat');
    connect();
  }
  function scheduleRefresh(expiresAt) { // resume before the token expires, so a long-open tab keeps its session
    clearTimeout(T.refresh);
    var left = Date.parse(expiresAt || '') - Date.now();
    if (left > 0) T.refresh = setTimeout(refreshToken, Math.min(2147483000, Math.max(60000, left * 0.8)));
  }
  function refreshToken() {
    var gen = S.gen;
    api('POST', 'sessions', { body: { session_token: S.token } }).then(function (r) {
      if (gen !== S.gen) return;
      if ((r.status === 200 || r.status === 201) && r.data && r.data.session_token) {
        S.token = r.data.session_token;
        sSet('localStorage', KEY, S.token);
        return scheduleRefresh(r.data.expires_at);
      }
      if (r.status === 401) return forgetSession(ERRORS.session_invalid);
      T.refresh = setTimeout(refreshToken, 60000);
    }, function () { if (gen === S.gen) T.refresh = setTimeout(refreshToken, 60000); });
  }
  function forgetSession(msg) {
    S.gen++;
    dropSocket();
    [T.reconnect, T.retry, T.refresh, T.typingIdle, T.agentTyping, T.ack].forEach(clearTimeout);
    clearInterval(T.hb);
    S.pending.forEach(function (p) { clearTimeout(p.timer); });
    S.pending.clear();
    S.token = null; S.visitorId = null;
    sSet('localStorage', KEY, null);
    sSet('localStorage', READ_KEY, null);
    sSet('localStorage', USER_KEY, null);
    S.seen = {}; S.lastSeq = S.maxSeq = S.agentReadSeq = S.maxAgentSeq = S.deliveredSent = S.readSent = S.readStored = 0;
    S.polling = S.resyncing = S.ready = false; S.typingOn = false;
    S.transport = firstTransport(); S.wsFailures = 0; S.attempt = 0;
    [].slice.call(UI.list.children).forEach(function (c) { if (c.getAttribute('data-author') !== 'greeting') c.remove(); });
    UI.typing.hidden = true;
    setUnread(0);
    setView('prechat');
    if (msg) showError(msg);
    if (identity() && !S.identityFailed) startSession();
  }
  function showUnavailable() {
    S.gen++;
    dropSocket();
    clearTimeout(T.reconnect); clearInterval(T.hb);
    setView('unavailable');
  }

  // ---- WebSocket -----------------------------------------------------------------------------------
  function connect() {
    clearTimeout(T.reconnect);
    if (!S.token || S.view !== 'chat') return;
    if (S.transport === 'rest') return startPolling();
    var gen = S.gen, opened = false, ws, token = S.token;
    setConn(S.attempt ? 'reconnecting' : 'connecting');
    var url = new URL('ws', BASE);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.search = '?token=' + encodeURIComponent(S.token);
    try { ws = new WebSocket(url.href); } catch (e) { return onClosed(false, 1006, token); }
    S.ws = ws; S.ready = false;
    ws.onopen = function () { opened = true; S.wsFailures = 0; };
    ws.onmessage = function (ev) {
      if (S.ws !== ws) return;
      T.lastFrame = Date.now();
      var f;
      try { f = JSON.parse(ev.data); } catch (e) { return; }
      if (f && typeof f.type === 'string') onFrame(f.type, f.data || {});
    };
    ws.onclose = function (ev) { if (S.ws === ws && gen === S.gen) { S.ws = null; onClosed(opened, ev.code, token); } };
    ws.onerror = function () { /* onclose follows */ };
  }
  function dropSocket() {
    var ws = S.ws;
    S.ws = null; S.ready = false;
    if (ws) { ws.onclose = ws.onmessage = ws.onopen = null; try { ws.close(1000); } catch (e) { /* */ } }
  }
  function onClosed(opened, code, token) {
    S.ready = false;
    clearInterval(T.hb);
    if (code === 4401 && token === S.token) return forgetSession(ERRORS.session_invalid); // else: refreshed since, retry
    if (code === 4403) return showUnavailable();
    if (code === 4429) showError('You sent too many messages too quickly. Reconnecting\u2026', 8000);
    if (code === 1009) showError('A message was too large for the chat. Reconnecting\u2026', 8000);
    if (!opened && ++S.wsFailures >= 3) {
      log('WebSocket failed to open 3 times, falling back to HTTP long-polling');
      S.transport = 'rest';
      sSet('sessionStorage', KEY + ':rest', '1'); // this network blocks WebSockets: do not wait for them again in this tab
      return startPolling();
    }
    scheduleReconnect();
  }
  function scheduleReconnect() {
    var base = Math.min(30000, 1000 * Math.pow(2, S.attempt++));
    setConn('reconnecting');
    clearTimeout(T.reconnect);
    T.reconnect = setTimeout(connect, base / 2 + Math.random() * base / 2);
  }
  function send(type, data) {
    if (!S.ws || !S.ready || S.ws.readyState !== 1) return false;
    try { S.ws.send(JSON.stringify({ type: type, data: data })); return true; } catch (e) { return false; }
  }
  function onFrame(type, d) {
    switch (type) {
      case 'ready':
        S.ready = true; S.attempt = 0;
        S.visitorId = d.visitor_id || S.visitorId;
        setAgentRead(d.agent_read_seq);
        send('resume', { last_seq: S.lastSeq });
        startHeartbeat(d.heartbeat_seconds);
        setConn('online');
        S.pending.forEach(sendPending);
        ack();
        break;
      case 'message.created': onMessage(d); break;
      case 'typing': if (d.who !== 'visitor') showTyping(d.state === 'on'); break;
      case 'read': setAgentRead(d.up_to_seq); break;
      case 'resync_required': resync(d.after_seq); break;
      case 'error': onServerError(d); break;
      default: break; // pong and unknown frames
    }
  }
  function startHeartbeat(sec) {
    clearInterval(T.hb);
    var ms = Math.max(1, +sec || 30) * 1000;
    T.lastFrame = Date.now();
    T.hb = setInterval(function () {
      if (Date.now() - T.lastFrame > ms * 3 + 5000) { dropSocket(); clearInterval(T.hb); scheduleReconnect(); return; }
      send('ping', {});
    }, ms);
  }
  function onServerError(d) {
    var p = d.client_id && S.pending.get(d.client_id);
    if (d.code === 'rate_limited') {
      if (p) { clearTimeout(p.timer); p.timer = setTimeout(function () { sendPending(p); }, 1000); }
      showError(ERRORS.rate_limited, 3000);
      return;
    }
    if (d.code === 'unavailable') { // the server could not store it: the same client_id again, later
      if (p) { clearTimeout(p.timer); p.timer = setTimeout(function () { sendPending(p); }, 2000 + Math.random() * 3000); }
      showError(errText(d), 5000);
      return;
    }
    if (p) failPending(p, errText(d));
    showError(errText(d), 8000);
  }
  function resync(after) {
    if (S.resyncing) return;
    S.resyncing = true;
    var gen = S.gen;
    function page(from) {
      return api('GET', 'messages?after_seq=' + from + '&limit=200', { auth: true }).then(function (r) {
        if (gen !== S.gen) return;
        if (r.status === 401) { S.resyncing = false; return forgetSession(ERRORS.session_invalid); }
        if (r.status !== 200 || !r.data) throw new Error('HTTP ' + r.status);
        var ms = r.data.messages || [];
        ms.forEach(onMessage);
        setAgentRead(r.data.agent_read_seq);
        if (r.data.has_more && ms.length) return page(ms[ms.length - 1].seq);
        if (S.lastSeq < S.maxSeq && S.lastSeq > from) return page(S.lastSeq); // a gap to live messages
        S.resyncing = false;
        ack();
      });
    }
    page(Math.min(typeof after === 'number' ? after : S.lastSeq, S.lastSeq)).catch(function () {
      S.resyncing = false;
      if (gen === S.gen) setTimeout(function () { if (gen === S.gen && S.ready) resync(S.lastSeq); }, 3000);
    });
  }

  // ---- HTTP long-poll fallback --------------------------------------------------------------------
  function startPolling() {
    if (S.polling) return;
    S.polling = true;
    var gen = S.gen;
    setConn('connecting');
    S.pending.forEach(sendPending);
    (function poll() {
      if (gen !== S.gen) return;
      var t0 = Date.now();
      api('GET', 'messages?after_seq=' + S.lastSeq + '&wait=25', { auth: true, timeout: 40000 }).then(function (r) {
        if (gen !== S.gen) return;
        if (r.status === 401) { S.polling = false; return forgetSession(ERRORS.session_invalid); }
        if (r.status === 403) { S.polling = false; return showUnavailable(); }
        if (r.status !== 200 || !r.data) throw new Error('HTTP ' + r.status);
        if (S.conn !== 'online') { setConn('online'); hideError(); }
        S.attempt = 0;
        var ms = r.data.messages || [];
        ms.forEach(onMessage);
        setAgentRead(r.data.agent_read_seq);
        ack();
        setTimeout(poll, !ms.length && Date.now() - t0 < 1000 ? 2000 : 0);
      }).catch(function () {
        if (gen !== S.gen) return;
        setConn('reconnecting');
        var base = Math.min(30000, 1000 * Math.pow(2, S.attempt++));
        setTimeout(poll, base / 2 + Math.random() * base / 2);
      });
    })();
  }
  function postMessage(p, data) {
    var gen = S.gen;
    api('POST', 'messages', { auth: true, body: data }).then(function (r) {
      if (gen !== S.gen) return;
      if ((r.status === 200 || r.status === 201) && r.data && r.data.message) return onMessage(r.data.message);
      if (r.status === 401) return forgetSession(ERRORS.session_invalid);
      var err = errOf(r);
      if (r.status === 429 || err.code === 'rate_limited') { p.timer = setTimeout(function () { sendPending(p); }, 1000); return; }
      if (r.status >= 500) { p.timer = setTimeout(function () { sendPending(p); }, 3000); return; }
      failPending(p, errText(err));
      showError(errText(err), 8000);
    }, function () { if (gen === S.gen) p.timer = setTimeout(function () { sendPending(p); }, 3000); });
  }

  // ---- messages ----------------------------------------------------------------------------------
  function setAgentRead(seq) {
    if (typeof seq !== 'number' || seq <= S.agentReadSeq) return;
    S.agentReadSeq = seq;
    UI.list.querySelectorAll('[data-author=visitor][data-seq]').forEach(function (el) {
      if (+el.getAttribute('data-seq') <= seq) setStatus(el, 'read');
    });
  }
  var STATUS_TEXT = { sending: 'Sending\u2026', uploading: 'Uploading\u2026', sent: 'Sent', read: 'Read', failed: 'Not sent' };
  function setStatus(el, st, why) {
    el.setAttribute('data-status', st);
    var meta = el.querySelector('.meta');
    meta.textContent = [el.getAttribute('data-time'), STATUS_TEXT[st] + (why ? ': ' + why : '')].filter(Boolean).join(' \u00b7 ');
  }
  function linkify(parent, text) {
    var parts = text.split(/(https?:\/\/[^\s<>"']+)/);
    parts.forEach(function (s, i) {
      if (i % 2 === 0) { if (s) parent.appendChild(document.createTextNode(s)); return; }
      var tail = /[.,;:!?)\]]+$/.exec(s), url = tail ? s.slice(0, -tail[0].length) : s;
      parent.appendChild(h('a', { href: safeUrl(url), target: '_blank', rel: 'noopener noreferrer nofollow', text: url }));
      if (tail) parent.appendChild(document.createTextNode(tail[0]));
    });
  }
  function renderMessage(m) {
    var author = ['visitor', 'agent', 'bot', 'system'].indexOf(m.author) >= 0 ? m.author : 'agent';
    var el = h('div', { class: 'msg ' + author, testid: 'message', 'data-author': author, 'data-seq': m.seq ? String(m.seq) : null,
      'data-client-id': m.client_id || null, 'data-time': fmtTime(m.created_at) });
    if (isAgentSide(author)) el.appendChild(h('div', { class: 'who', text: m.author_name || (author === 'bot' ? 'Bot' : 'Agent') }));
    var bubble = h('div', { class: 'bubble' });
    if (m.text) { var t = h('div', { class: 'text', testid: 'message-text' }); linkify(t, String(m.text)); bubble.appendChild(t); }
    (m.attachments || []).forEach(function (a) {
      var url = safeUrl(a.url || (a.id ? 'attachments/' + encodeURIComponent(a.id) : '')), name = a.filename || 'attachment';
      if (url && /^image\//.test(a.mime_type || '')) {
        bubble.appendChild(h('a', { class: 'att', href: url, target: '_blank', rel: 'noopener noreferrer', testid: 'attachment' },
          [h('img', { src: url, alt: name, loading: 'lazy' })]));
      } else {
        bubble.appendChild(h(url ? 'a' : 'span', { class: 'att', href: url, target: url ? '_blank' : null, rel: 'noopener noreferrer', download: url ? name : null, testid: 'attachment',
          text: '\ud83d\udcce ' + name + (a.size ? ' (' + fmtSize(a.size) + ')' : '') }));
      }
    });
    var atts = m.attachments || [];
    if (!m.text && atts.length && atts.every(function (a) { return /^image\//.test(a.mime_type || ''); })) bubble.classList.add('media');
    el.appendChild(bubble);
    if (m.buttons && m.buttons.length) {
      var chips = h('div', { class: 'chips' });
      m.buttons.forEach(function (b) {
        var link = b.url && safeUrl(b.url);
        if (link) {
          chips.appendChild(h('a', { class: 'chip', testid: 'button-chip', href: link, target: '_blank', rel: 'noopener noreferrer nofollow', text: b.title || link }));
          return;
        }
        chips.appendChild(h('button', { type: 'button', class: 'chip', testid: 'button-chip', 'data-button-id': b.id, text: b.title || b.id,
          onclick: function () {
            if (S.view !== 'chat' || !sendText(String(b.title || b.id))) return;
            chips.querySelectorAll('button').forEach(function (x) { x.disabled = true; });
          } }));
      });
      el.appendChild(chips);
    }
    el.appendChild(h('div', { class: 'meta', testid: 'message-status', text: el.getAttribute('data-time') }));
    if (author === 'visitor') setStatus(el, !m.seq ? 'sending' : m.seq <= S.agentReadSeq ? 'read' : 'sent');
    return el;
  }
  function insertSorted(el, seq) {
    var kids = UI.list.children;
    for (var i = 0; i < kids.length; i++) {
      var k = kids[i], ks = k.getAttribute('data-seq');
      if (k !== el && (k.hasAttribute('data-pending') || (ks && +ks > seq))) { UI.list.insertBefore(el, k); return; }
    }
    UI.list.appendChild(el);
  }
  function onMessage(m) {
    if (!m || typeof m.seq !== 'number') return;
    var p = m.client_id && S.pending.get(m.client_id);
    if (p) { clearTimeout(p.timer); S.pending.delete(m.client_id); p.el.remove(); }
    if (S.seen[m.seq]) return; // duplicate (replay overlap, resend echo)
    S.seen[m.seq] = true;
    var nearBottom = UI.list.scrollHeight - UI.list.scrollTop - UI.list.clientHeight < 80;
    insertSorted(renderMessage(m), m.seq);
    if (m.seq > S.maxSeq) S.maxSeq = m.seq;
    while (S.seen[S.lastSeq + 1]) S.lastSeq++;
    if (isAgentSide(m.author)) {
      showTyping(false);
      if (m.seq > S.maxAgentSeq) S.maxAgentSeq = m.seq;
      if (m.seq > S.readStored && !(S.open && document.visibilityState === 'visible')) setUnread(S.unread + 1);
      clearTimeout(T.ack);
      T.ack = setTimeout(ack, 100);
    }
    if (nearBottom || m.author === 'visitor') scrollBottom();
  }
  function ack() {
    // Only what arrived without a gap (a resync may still be paging older messages).
    var up = Math.min(S.maxAgentSeq, S.lastSeq);
    if (!up || !S.token) return;
    if (up > S.deliveredSent) {
      var delivered = S.transport === 'ws' ? send('delivered', { up_to_seq: up }) : (api('POST', 'delivered', { auth: true, body: { up_to_seq: up } }).catch(function () { /* */ }), true);
      if (delivered) S.deliveredSent = up;
    }
    if (up > S.readSent && S.open && document.visibilityState === 'visible') {
      var ok = S.transport === 'ws' ? send('read', { up_to_seq: up }) : (api('POST', 'read', { auth: true, body: { up_to_seq: up } }).catch(function () { /* */ }), true);
      if (ok) { S.readSent = up; S.readStored = Math.max(S.readStored, up); sSet('localStorage', READ_KEY, S.readStored); }
      setUnread(0);
    }
  }
  function showTyping(on) {
    clearTimeout(T.agentTyping);
    UI.typing.hidden = !on;
    if (on) { T.agentTyping = setTimeout(function () { UI.typing.hidden = true; }, 6000); scrollBottom(); }
  }

  // ---- sending ----------------------------------------------------------------------------------
  function newPending(text, label) {
    var p = { client_id: uuid(), text: text, attachment_ids: null, ready: !label };
    p.el = renderMessage({ author: 'visitor', text: text || label, client_id: p.client_id });
    p.el.setAttribute('data-pending', '');
    if (label) setStatus(p.el, 'uploading');
    S.pending.set(p.client_id, p);
    UI.list.appendChild(p.el);
    scrollBottom();
    return p;
  }
  function sendPending(p) {
    if (!p.ready || S.pending.get(p.client_id) !== p) return;
    var data = { client_id: p.client_id, text: p.text };
    if (p.attachment_ids) data.attachment_ids = p.attachment_ids;
    if (S.transport === 'rest') { if (S.polling) postMessage(p, data); } else send('message.send', data); // else resent after resume
  }
  function failPending(p, why) {
    clearTimeout(p.timer);
    S.pending.delete(p.client_id);
    p.el.removeAttribute('data-pending');
    setStatus(p.el, 'failed', why);
  }
  function sendText(text) {
    text = text.trim();
    if (!text) return false;
    var max = limits().max_message_chars;
    if (max && chars(text) > max) { showError('Messages can be at most ' + max + ' characters long.', 6000); return false; }
    typingOff();
    sendPending(newPending(text));
    return true;
  }
  function uploadFile(file) {
    var max = limits().max_attachment_bytes;
    if (max && file.size > max) { showError('\u201c' + file.name + '\u201d is too large (max ' + fmtSize(max) + ').', 8000); return; }
    var p = newPending('', '\ud83d\udcce ' + file.name), gen = S.gen;
    api('POST', 'attachments?filename=' + encodeURIComponent(file.name), { auth: true, raw: file, type: file.type || 'application/octet-stream', timeout: 120000 })
      .then(function (r) {
        if (gen !== S.gen) return;
        var att = r.data && (r.data.attachment || r.data);
        if (r.status === 201 || r.status === 200) {
          if (!att || !att.id) throw new Error('no attachment id');
          p.attachment_ids = [att.id]; p.ready = true;
          setStatus(p.el, 'sending');
          return sendPending(p);
        }
        if (r.status === 401) return forgetSession(ERRORS.session_invalid);
        var why = r.status === 413 ? 'the file is too large' : r.status === 415 ? 'this file type is not allowed' : errText(errOf(r));
        failPending(p, why);
        showError('Could not upload \u201c' + file.name + '\u201d: ' + why + '.', 8000);
      }).catch(function () {
        if (gen !== S.gen || !S.pending.has(p.client_id)) return;
        failPending(p, 'upload failed');
        showError('Could not upload \u201c' + file.name + '\u201d. Please try again.', 8000);
      });
  }
  function sendTyping(state) {
    if (S.transport === 'ws') send('typing', { state: state });
    else if (S.polling) api('POST', 'typing', { auth: true, body: { state: state } }).catch(function () { /* */ });
  }
  function onType() {
    updateCount();
    if (!UI.input.value.trim()) return typingOff();
    var now = Date.now();
    if (now - S.typingSentAt >= 2000) { S.typingSentAt = now; S.typingOn = true; sendTyping('on'); }
    clearTimeout(T.typingIdle);
    T.typingIdle = setTimeout(typingOff, 3000);
  }
  function typingOff() {
    clearTimeout(T.typingIdle);
    if (S.typingOn) { S.typingOn = false; S.typingSentAt = 0; sendTyping('off'); }
  }
  function updateCount() {
    var max = limits().max_message_chars, n = chars(UI.input.value);
    UI.input.style.height = '38px';
    UI.input.style.height = Math.min(120, UI.input.scrollHeight + 2) + 'px';
    if (!max) return;
    UI.count.hidden = n < max * 0.9;
    UI.count.textContent = n + ' / ' + max;
    UI.count.classList.toggle('over', n > max);
  }
  function buildComposer() {
    UI.input = h('textarea', { rows: '1', testid: 'composer-input', placeholder: 'Write a message\u2026', 'aria-label': 'Message' });
    UI.count = h('div', { class: 'count', hidden: true });
    var file = h('input', { type: 'file', hidden: true, testid: 'file-input' });
    var attach = h('button', { type: 'button', class: 'ib', testid: 'attach', 'aria-label': 'Attach a file', title: 'Attach a file',
      hidden: limits().max_attachment_bytes === 0, onclick: function () { file.click(); } }, [icon(ICONS.clip)]);
    var sendBtn = h('button', { type: 'submit', class: 'ib send', testid: 'composer-send', 'aria-label': 'Send', title: 'Send' }, [icon(ICONS.send)]);
    var form = h('form', { class: 'composer', testid: 'composer' }, [attach, file, UI.input, sendBtn]);
    file.addEventListener('change', function () { [].slice.call(file.files || []).forEach(uploadFile); file.value = ''; });
    UI.input.addEventListener('input', onType);
    UI.input.addEventListener('keydown', function (e) {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
    });
    form.addEventListener('submit', function (e) { e.preventDefault(); submit(); });
    function submit() { if (sendText(UI.input.value)) { UI.input.value = ''; updateCount(); } UI.input.focus(); }
    return h('div', null, [UI.count, form]);
  }

  // ---- start ------------------------------------------------------------------------------------
  function loadConfig(tries) {
    api('GET', 'config').then(function (r) {
      if (r.status !== 200 || !r.data) {
        if (r.status >= 500 && tries < 5) return setTimeout(function () { loadConfig(tries + 1); }, 2000 * (tries + 1));
        return console.warn('[switchboard-webchat] config not available (HTTP ' + r.status + ')', r.data);
      }
      S.config = r.data;
      buildUI();
      setView('loading');
      setOpen(wantOpen);
      startSession();
    }, function (e) {
      if (tries < 5) setTimeout(function () { loadConfig(tries + 1); }, 2000 * (tries + 1));
      else console.warn('[switchboard-webchat] cannot load config', e);
    });
  }
  document.addEventListener('visibilitychange', function () { if (document.visibilityState === 'visible') ack(); });
  window.addEventListener('online', function () { if (S.conn === 'reconnecting' && S.transport === 'ws' && !S.ws) connect(); });

  window.SwitchboardWebchat = {
    loaded: true,
    open: function () { setOpen(true); },
    close: function () { setOpen(false); },
    toggle: function () { setOpen(!S.open); },
    state: function () {
      return { account_id: ACCOUNT, base: BASE, open: S.open, view: S.view, connection: S.conn, transport: S.transport,
        has_session: !!S.token, visitor_id: S.visitorId, last_seq: S.lastSeq, max_seq: S.maxSeq, agent_read_seq: S.agentReadSeq,
        max_agent_seq: S.maxAgentSeq, read_sent: S.readSent, delivered_sent: S.deliveredSent, ws_failures: S.wsFailures,
        pending: Array.from(S.pending.keys()), messages: Object.keys(S.seen).length, unread: S.unread };
    }
  };
  if (document.body) loadConfig(0); else document.addEventListener('DOMContentLoaded', function () { loadConfig(0); });
})();
