// The cashier page's script (served from the gateway's origin; the CSP allows nothing else).
// The server-rendered page is complete without it; this keeps it current: it polls the JSON
// API, and when the order changed it fetches the page again and swaps its content in place (one
// renderer, one string catalogue: the server's). It also copies, counts down and redirects.
/* global document, window, location, navigator, fetch, DOMParser, URLSearchParams, history */
(function () {
  'use strict';
  var POLL_MS = 2000;
  var BACKOFF_MS = 5000;
  var REDIRECT_MS = 3000;
  var main = document.getElementById('cashier');
  var token = new URLSearchParams(location.search).get('t');
  if (!main || !token || !main.getAttribute('data-order')) return;
  var api = '/cashier/api/orders/' + encodeURIComponent(main.getAttribute('data-order')) + '?t=' + encodeURIComponent(token);
  // A failed no-script choice came back with e=1: shown once, not carried into every refresh.
  var params = new URLSearchParams(location.search);
  if (params.has('e') && history.replaceState) {
    params.delete('e');
    history.replaceState(null, '', location.pathname + '?' + params.toString());
  }
  var announce = document.getElementById('announce');
  var pollTimer = null;
  var fallback = false;
  var redirectTimer = null;
  var countdownEnd = 0;
  var deadlineAsked = false;
  var selectRetries = 0;

  function signature(v) {
    var payments = (v.payments || []).map(function (p) { return p.tx_hash + ':' + p.confirmations + ':' + p.status; }).join(',');
    var elsewhere = (v.elsewhere || []).map(function (e) { return e.network + ':' + e.currency + ':' + e.amount; }).join(',');
    return [v.payer_state, v.selected ? v.selected.network + ':' + v.selected.currency : '', payments, v.remaining || '', v.pay_exception || '', elsewhere].join('|');
  }

  function schedule(ms) {
    window.clearTimeout(pollTimer);
    if (main.getAttribute('data-final') === 'true') return;
    pollTimer = window.setTimeout(poll, ms);
  }

  // Said by screen readers: the announcer is a status region (polite).
  function say(text) {
    if (announce) announce.textContent = text;
  }

  // The status section's text without its heading, and what a change of it is told by: the state
  // and its notes, but while confirming not the count (each new block would be said again).
  function statusParts(countToo) {
    var status = document.getElementById('status');
    if (!status) return [];
    var counting = !countToo && main.getAttribute('data-state') === 'CONFIRMING';
    return Array.prototype.filter
      .call(status.children, function (c) { return c.id !== 'status-h' && !(counting && c.id === 'status-text'); })
      .map(function (c) { return c.textContent.replace(/\s+/g, ' ').trim(); });
  }

  function refresh() {
    return fetch(location.pathname + location.search, { cache: 'no-store', credentials: 'omit' })
      // Only the order's page itself replaces this one (not a refusal: too many requests, say).
      .then(function (res) { return res.ok ? res.text() : null; })
      .then(function (html) {
        if (html === null) return;
        var next = new DOMParser().parseFromString(html, 'text/html').getElementById('cashier');
        if (!next) return;
        var was = main.getAttribute('data-state') + '|' + statusParts(false).join('|');
        ['data-state', 'data-final', 'data-sig'].forEach(function (a) { main.setAttribute(a, next.getAttribute(a) || ''); });
        // The focused control keeps the focus (a keyboard user is not sent back to the top).
        var focused = document.activeElement && main.contains(document.activeElement) ? document.activeElement.id : '';
        // Everything but the announcer is replaced: it stays in the document, or its next text would not be said.
        Array.prototype.slice.call(main.childNodes).forEach(function (n) { if (n !== announce) main.removeChild(n); });
        Array.prototype.slice.call(next.childNodes).forEach(function (n) {
          if (!(announce && n.id === 'announce')) main.appendChild(document.adoptNode(n));
        });
        if (main.getAttribute('data-state') + '|' + statusParts(false).join('|') !== was) say(statusParts(true).join(' '));
        var again = focused ? document.getElementById(focused) : null;
        // A control no longer shown (the address once paid): the status, not the top of the page.
        if (focused && !again) {
          again = document.getElementById('status-h');
          if (again) again.setAttribute('tabindex', '-1');
        }
        if (again) again.focus();
        bind();
      });
  }

  function poll() {
    fetch(api, { cache: 'no-store', credentials: 'omit', headers: { accept: 'application/json' } })
      .then(function (res) {
        if (res.status === 429) return schedule(BACKOFF_MS);
        if (!res.ok) return schedule(BACKOFF_MS);
        return res.json().then(function (v) {
          if (signature(v) !== main.getAttribute('data-sig')) return refresh().then(function () { schedule(POLL_MS); });
          schedule(POLL_MS);
        });
      })
      .catch(function () { schedule(BACKOFF_MS); });
  }

  function two(n) { return n < 10 ? '0' + n : String(n); }

  function tick() {
    var el = document.getElementById('countdown');
    if (!el) return;
    var left = Math.max(0, Math.round((countdownEnd - Date.now()) / 1000));
    var d = Math.floor(left / 86400);
    var h = Math.floor((left % 86400) / 3600);
    var rest = two(Math.floor((left % 3600) / 60)) + ':' + two(left % 60);
    // As the server writes it: [d days] [h:]mm:ss.
    el.textContent = d > 0 ? d + ' ' + (el.getAttribute('data-days') || 'd') + ' ' + two(h) + ':' + rest : (h > 0 ? h + ':' : '') + rest;
    // The deadline passed: ask once at once (the order may have closed), then the usual polling
    // (and its back-off after a 429) goes on; not a poll every second until the order is final.
    if (left === 0 && !deadlineAsked && main.getAttribute('data-final') !== 'true') {
      deadlineAsked = true;
      schedule(0);
    }
  }

  function bind() {
    var cd = document.getElementById('countdown');
    if (cd) countdownEnd = Date.now() + Number(cd.getAttribute('data-seconds') || 0) * 1000;
    tick();
    var deadline = document.getElementById('deadline');
    if (deadline && Intl && Intl.DateTimeFormat) {
      try {
        // In the device's zone, named (the server's text names UTC): a time without its zone does
        // not tell a payer on a phone set to another zone which clock it is on. (dateStyle and
        // timeStyle cannot be combined with timeZoneName, hence the fields one by one.)
        deadline.textContent = new Intl.DateTimeFormat(document.documentElement.lang, { year: 'numeric', month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit', timeZoneName: 'short' }).format(new Date(deadline.getAttribute('datetime')));
      } catch { /* keep the server's UTC text */ }
    }
    var redirect = document.getElementById('redirect');
    var stay = document.getElementById('stay');
    if (redirect && redirectTimer === 'stayed') showStayed();
    else if (redirect && !redirectTimer) {
      var to = redirect.getAttribute('data-redirect');
      redirectTimer = window.setTimeout(function () { location.assign(to); }, REDIRECT_MS);
      if (stay) stay.hidden = false;
    }
  }

  function copy(button) {
    var source = document.getElementById(button.getAttribute('data-copy'));
    if (!source) return;
    var text = source.textContent.trim();
    var done = function () {
      var label = button.textContent;
      var copied = button.getAttribute('data-copied') || label;
      // Shown on the button, and said through the announcer (a button's new name is not a
      // status message screen readers say); cleared after, so the next copy is said again.
      button.textContent = copied;
      say(copied);
      window.setTimeout(function () {
        button.textContent = label;
        if (announce && announce.textContent === copied) say('');
      }, 2000);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { selectText(source); });
    } else {
      selectText(source);
      try { if (document.execCommand('copy')) done(); } catch { /* the text stays selected for a manual copy */ }
    }
  }

  function selectText(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  // The payer stays on the paid page: the redirect is called off, for good (also across refreshes).
  function showStayed() {
    var text = document.getElementById('redirecting');
    var stay = document.getElementById('stay');
    if (text) text.textContent = text.getAttribute('data-stayed');
    if (stay) stay.hidden = true;
  }

  main.addEventListener('click', function (e) {
    var button = e.target.closest ? e.target.closest('button[data-copy]') : null;
    if (button) copy(button);
    if (e.target.closest && e.target.closest('#stay') && redirectTimer !== 'stayed') {
      window.clearTimeout(redirectTimer);
      redirectTimer = 'stayed';
      showStayed();
      var text = document.getElementById('redirecting');
      if (announce && text) announce.textContent = text.textContent;
      // The button is gone: the focus goes to the way back to the shop.
      var back = document.getElementById('redirect');
      if (back) back.focus();
    }
  });

  main.addEventListener('submit', function (e) {
    var form = e.target;
    var chosen = e.submitter;
    if (fallback || !form || form.id !== 'options' || !chosen || !chosen.getAttribute('data-network')) return;
    e.preventDefault();
    // Busy until the answer: the old pair's address dimmed and the choices held, so nothing is
    // paid to it nor asked twice meanwhile.
    main.classList.add('busy');
    Array.prototype.forEach.call(form.querySelectorAll('button'), function (b) { b.disabled = true; });
    var release = function () {
      main.classList.remove('busy');
      Array.prototype.forEach.call(form.querySelectorAll('button'), function (b) { b.disabled = false; });
    };
    fetch(api.replace('?t=', '/select?t='), {
      method: 'POST',
      cache: 'no-store',
      credentials: 'omit',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ network: chosen.getAttribute('data-network'), currency: chosen.getAttribute('data-currency') }),
    })
      .then(function (res) {
        // Too many requests: the same choice again in a moment, a few times (the button as it is
        // then: a refresh meanwhile may have replaced it).
        if (res.status === 429 && selectRetries < 3) {
          selectRetries += 1;
          var id = chosen.id;
          window.setTimeout(function () {
            release();
            var again = id ? document.getElementById(id) : null;
            if (again) again.click();
            else location.assign(location.pathname + location.search + '&e=1');
          }, 1500);
          return null;
        }
        selectRetries = 0;
        // Refused (taken meanwhile, closed): the page says why, as without script.
        if (!res.ok) {
          location.assign(location.pathname + location.search + '&e=1');
          return null;
        }
        return refresh().then(function () {
          main.classList.remove('busy');
          var pay = document.getElementById('pay-h');
          if (pay) { pay.setAttribute('tabindex', '-1'); pay.focus(); }
          schedule(POLL_MS);
        });
      })
      .catch(function () {
        // No answer: the plain form, with the button chosen.
        fallback = true;
        release();
        if (form.requestSubmit) form.requestSubmit(chosen);
        else form.submit();
      });
  });

  window.setInterval(tick, 1000);
  bind();
  schedule(POLL_MS);
})();
