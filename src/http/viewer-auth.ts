/**
 * Signing in to the viewer when auth is on. OHIF itself takes a bearer token only from `?token=`
 * on its mode routes, so its study list (QIDO-RS) would have none. Instead the node's login page
 * (/viewer/login) gets a token from /api/auth/token and keeps it in sessionStorage (per tab,
 * gone when the tab closes), and app-config.js — which OHIF loads before its own code — adds it
 * as `Authorization: Bearer` to the viewer's requests to this node's /dicom-web and /wado, and
 * sends the user back to the login page when there is none, it has expired, or the node
 * answers 401. No cookie: DICOMweb stays bearer-only, so other sites cannot ride a session.
 */

const STORAGE_KEY = 'radiant.token';

/** JavaScript prepended to app-config.js when auth is on. */
export function viewerAuthScript(base: string): string {
  const login = `${base}/login`;
  return `(function () {
  var KEY = ${JSON.stringify(STORAGE_KEY)};
  var LOGIN = ${JSON.stringify(login)};
  function expired(t) {
    try {
      var p = JSON.parse(atob(t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
      return typeof p.exp === 'number' && p.exp * 1000 < Date.now() + 5000;
    } catch (e) { return true; }
  }
  function toLogin() {
    sessionStorage.removeItem(KEY);
    location.replace(LOGIN + '?next=' + encodeURIComponent(location.pathname + location.search));
  }
  var q = new URLSearchParams(location.search);
  if (q.get('token')) sessionStorage.setItem(KEY, q.get('token'));
  var token = sessionStorage.getItem(KEY);
  if (!token || expired(token)) { toLogin(); throw new Error('sign-in required'); }
  var origin = location.origin;
  function ours(url) {
    try {
      var u = new URL(url, location.href);
      return u.origin === origin && (u.pathname.indexOf('/dicom-web/') === 0 || u.pathname === '/dicom-web' || u.pathname === '/wado');
    } catch (e) { return false; }
  }
  var open = XMLHttpRequest.prototype.open;
  var setHeader = XMLHttpRequest.prototype.setRequestHeader;
  var send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.open = function (method, url) {
    this.__radiantOurs = ours(url);
    this.__radiantAuth = false;
    return open.apply(this, arguments);
  };
  XMLHttpRequest.prototype.setRequestHeader = function (name) {
    if (String(name).toLowerCase() === 'authorization') this.__radiantAuth = true;
    return setHeader.apply(this, arguments);
  };
  XMLHttpRequest.prototype.send = function () {
    if (this.__radiantOurs) {
      if (!this.__radiantAuth) setHeader.call(this, 'Authorization', 'Bearer ' + sessionStorage.getItem(KEY));
      this.addEventListener('load', function () { if (this.status === 401) toLogin(); });
    }
    return send.apply(this, arguments);
  };
  var nativeFetch = window.fetch;
  window.fetch = function (input, init) {
    var url = typeof input === 'string' || input instanceof URL ? String(input) : input.url;
    if (!ours(url)) return nativeFetch.apply(this, arguments);
    var headers = new Headers((init && init.headers) || (typeof input === 'object' && !(input instanceof URL) ? input.headers : undefined));
    if (!headers.has('Authorization')) headers.set('Authorization', 'Bearer ' + sessionStorage.getItem(KEY));
    return nativeFetch.call(this, input, Object.assign({}, init, { headers: headers })).then(function (res) {
      if (res.status === 401) toLogin();
      return res;
    });
  };
})();
`;
}

/** The login page: a form posting to /api/auth/token, then back to where the user was going. */
export function viewerLoginHtml(base: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>RadiantAI — sign in</title>
<style>
  body { font-family: system-ui, sans-serif; background: #0b1020; color: #e6e9f0; display: flex; min-height: 100vh; align-items: center; justify-content: center; margin: 0; }
  form { background: #151b30; padding: 2rem; border-radius: 8px; width: 20rem; }
  h1 { font-size: 1.2rem; margin: 0 0 1rem; }
  label { display: block; margin: .75rem 0 .25rem; font-size: .9rem; }
  input { width: 100%; box-sizing: border-box; padding: .5rem; border-radius: 4px; border: 1px solid #3a4466; background: #0b1020; color: inherit; }
  button { margin-top: 1.25rem; width: 100%; padding: .6rem; border: 0; border-radius: 4px; background: #3b82f6; color: white; font-size: 1rem; cursor: pointer; }
  #error { color: #f87171; min-height: 1.2em; margin-top: .75rem; font-size: .9rem; }
  p.note { font-size: .75rem; color: #9aa3bd; margin-top: 1rem; }
</style>
</head>
<body>
<form id="login" autocomplete="on">
  <h1>RadiantAI viewer</h1>
  <label for="username">Username</label>
  <input id="username" name="username" autocomplete="username" required autofocus>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <button type="submit">Sign in</button>
  <div id="error" role="alert"></div>
  <p class="note">Access is logged. AI results are drafts for a radiologist to review.</p>
</form>
<script>
(function () {
  var KEY = ${JSON.stringify(STORAGE_KEY)};
  var BASE = ${JSON.stringify(base)};
  var form = document.getElementById('login');
  var error = document.getElementById('error');
  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    error.textContent = '';
    var body = new URLSearchParams({ username: form.username.value, password: form.password.value });
    fetch('/api/auth/token', { method: 'POST', body: body }).then(function (res) {
      return res.json().then(function (j) { return { status: res.status, body: j }; });
    }).then(function (r) {
      if (r.status !== 200 || !r.body.access_token) {
        error.textContent = (r.body && r.body.error && r.body.error.message) || 'sign-in failed';
        return;
      }
      sessionStorage.setItem(KEY, r.body.access_token);
      var next = new URLSearchParams(location.search).get('next') || '';
      // Only a path under the viewer: never an open redirect.
      location.replace(next.indexOf(BASE + '/') === 0 && next.indexOf('//') < 0 ? next : BASE + '/');
    }).catch(function () { error.textContent = 'the node cannot be reached'; });
  });
})();
</script>
</body>
</html>
`;
}
