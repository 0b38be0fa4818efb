// Who is signed in, for every page: window.LW.session (load after lang.js, before the page's own script).
//
// Interface (pages use only this):
//   LW.session.user()            -> {name, display_name, role, sites, kind: "user"|"token"} or null
//   LW.session.may(role)         -> whether the signed-in role is `role` or above (viewer < operator < duty_officer < admin)
//   LW.session.covers(siteId)    -> whether the sign-in's site scope covers the site (no scope: every site)
//   LW.session.fetch(path, opts) -> fetch() with the credentials; a JSON body object in opts.json is sent as JSON;
//                                   resolves to the parsed JSON body, rejects with Error(detail) (err.status) on a
//                                   non-2xx answer; a 401 that says the session ended signs the page out visibly
//   LW.session.authHeader()      -> {Authorization: ...} for a service token, else {} (a person's session is an
//                                   HttpOnly cookie the browser sends by itself, EventSource and downloads included)
//   LW.session.ready             -> a Promise resolved once the stored sign-in has been checked
//   LW.session.onChange(cb)      -> cb(user) after every sign-in and sign-out (user null when signed out)
//   LW.session.mount(element)    -> draws the sign-in form (user name + password) or the signed-in person with a
//                                   sign-out button into element, in the page's language (LW.lang)
//   LW.session.signOut()         -> ends the session on the server too
// Also: LW.session.login(name, password) (what the form does), LW.session.signIn(token) (a service token: tests,
// machines' consoles), LW.session.check() (ask the server now whether the session lives; done every minute).
// A signed-in person can change their own password from the widget (「改密码」).
//
// People sign in with name and password (POST /api/v1/session): the server answers with an HttpOnly SameSite=Strict
// cookie, so no script of the page can read the secret. Every request carries X-Liaowang-Request (the CSRF guard
// the server asks of cookie-signed writes). A service token is kept in sessionStorage like before.
(function () {
  "use strict";
  const KEY = "liaowang-token";
  const CHECK_MS = 60000;
  const ROLE_RANK = { viewer: 0, operator: 1, duty_officer: 2, admin: 3 };
  const WORDS = {
    zh: { name: "用户名", password: "密码", signin: "登录", signout: "退出", token: "令牌", tokenTitle: "用服务令牌登录",
          user: "账号", wrong: "登录失败", ended: "登录已失效(超时或已退出),请重新登录", all: "全部场所",
          password_btn: "改密码", current: "当前密码", fresh: "新密码", again: "再输一次", save: "保存",
          differ: "两次输入的新密码不同", changed: "密码已修改(其他设备上的登录已退出)",
          roles: { viewer: "查看员", operator: "操作员", duty_officer: "值班员", admin: "管理员" } },
    en: { name: "User name", password: "Password", signin: "Sign in", signout: "Sign out", token: "Token",
          tokenTitle: "Sign in with a service token", user: "Account", wrong: "Sign-in failed",
          ended: "Your session has ended (timed out or signed out): sign in again", all: "all sites",
          password_btn: "Password", current: "Current password", fresh: "New password", again: "New again",
          save: "Save", differ: "The new passwords differ", changed: "Password changed (other devices signed out)",
          roles: { viewer: "Viewer", operator: "Operator", duty_officer: "Duty officer", admin: "Administrator" } },
  };
  const listeners = [];
  const mounts = [];
  let token = sessionStorage.getItem(KEY) || "";
  let user = null;
  let notice = "";      // why the page is signed out ("" when nobody asked it to be)
  let useToken = false; // the form shows the token field instead of name + password
  let siteNames = {};
  let changingPassword = false; // the signed-in widget shows the change-password form
  let passwordNote = "";
  let timer = null;

  const lang = () => (window.LW && window.LW.lang ? window.LW.lang.current() : "zh");
  const words = () => WORDS[lang()] || WORDS.zh;
  function authHeader() { return token ? { Authorization: "Bearer " + token } : {}; }

  async function request(path, opts = {}) {
    const headers = { "X-Liaowang-Request": "1", ...authHeader(), ...(opts.headers || {}) };
    let body = opts.body;
    if (opts.json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(opts.json); }
    const response = await fetch(path, { credentials: "same-origin", ...opts, headers, body });
    const parsed = await response.json().catch(() => ({}));
    if (!response.ok) {
      const detail = typeof parsed.detail === "string" ? parsed.detail : JSON.stringify(parsed.detail || response.statusText);
      const error = new Error(detail);
      error.status = response.status;
      error.ended = response.headers.get("X-Liaowang-Session") === "ended";  // a session that was good has ended
      if (response.status === 401 && user && !opts.quiet && (error.ended || user.kind === "token")) {
        ended();
      }
      throw error;
    }
    return parsed;
  }

  function changed() {
    changingPassword = false; passwordNote = "";
    clearInterval(timer);
    timer = user && user.kind === "user" ? setInterval(check, CHECK_MS) : null;
    draw();
    listeners.forEach(cb => { try { cb(user); } catch (err) { console.error(err); } });
  }

  function ended() {  // the server says the session is over: say so where the sign-in form is, and on the console
    user = null; token = ""; sessionStorage.removeItem(KEY);
    notice = "ended";
    console.warn("liaowang: the session has ended");
    changed();
  }

  async function learnSites() {
    siteNames = {};
    if (!user || !user.sites || user.sites.length === 0) return;
    try {
      (await request("/api/v1/sites", { quiet: true })).forEach(s => { siteNames[s.id] = s.name; });
    } catch (err) { console.error("liaowang: site names unavailable", err); }  // the ids are shown instead
  }

  async function signIn(value) {  // a service token
    token = value || ""; user = null; notice = "";
    if (!token) { sessionStorage.removeItem(KEY); changed(); return null; }
    try {
      user = await request("/api/v1/session", { quiet: true });
      sessionStorage.setItem(KEY, token);
    } catch (err) {
      token = ""; sessionStorage.removeItem(KEY);
      changed();
      throw err;
    }
    await learnSites();
    changed();
    return user;
  }

  async function login(name, password) {  // a person
    token = ""; sessionStorage.removeItem(KEY); notice = "";
    user = await request("/api/v1/session", { method: "POST", json: { name, password }, quiet: true });
    await learnSites();
    changed();
    return user;
  }

  async function signOut() {
    const wasUser = user && user.kind === "user";
    token = ""; sessionStorage.removeItem(KEY);
    if (wasUser) {
      try { await request("/api/v1/session", { method: "DELETE", quiet: true }); }
      catch (err) { if (err.status !== 401) console.error("liaowang: sign-out", err); }  // 401: it had ended already
    }
    user = null; notice = "";
    changed();
  }

  async function check() {
    if (!user) return null;
    try { await request("/api/v1/session"); }
    catch (err) { if (err.status !== 401) console.error("liaowang: session check", err); }  // 401 signed out above
    return user;
  }

  // ------------------------------------------------------------------ the widget

  function el(tag, props = {}, ...children) {
    const node = Object.assign(document.createElement(tag), props);
    node.append(...children);
    return node;
  }

  function form(w) {
    const error = el("span", { id: "signin-error", className: "lw-session-error", role: "alert",
                               textContent: notice === "ended" ? w.ended : "" });
    const fields = useToken
      ? [el("input", { type: "password", id: "token", autocomplete: "off", placeholder: w.token, ariaLabel: w.token })]
      : [el("input", { type: "text", id: "signin-name", autocomplete: "username", placeholder: w.name, ariaLabel: w.name,
                       autocapitalize: "off", spellcheck: false }),
         el("input", { type: "password", id: "signin-password", autocomplete: "current-password",
                       placeholder: w.password, ariaLabel: w.password })];
    const submit = el("button", { type: "submit", id: "signin-btn", textContent: w.signin });
    const toggle = el("button", { type: "button", id: "signin-token-toggle", className: "lw-session-link",
                                  textContent: useToken ? w.user : w.token, title: useToken ? w.signin : w.tokenTitle });
    toggle.onclick = () => { useToken = !useToken; draw(); };
    const box = el("form", { className: "lw-session-form" }, ...fields, submit, toggle, error);
    box.onsubmit = async event => {
      event.preventDefault();
      submit.disabled = true;
      error.textContent = "";
      try {
        if (useToken) await signIn(box.querySelector("#token").value.trim());
        else await login(box.querySelector("#signin-name").value.trim(), box.querySelector("#signin-password").value);
      } catch (err) {
        error.textContent = `${w.wrong}: ${err.message}`;
        submit.disabled = false;
      }
    };
    return box;
  }

  function signedIn(w) {
    const sites = (user.sites || []).map(id => siteNames[id] || id).join("、") || w.all;
    const role = w.roles[user.role] || user.role;
    const who = el("span", { id: "whoami", className: "lw-session-who", title: `${user.name} · ${role} · ${sites}` },
                   el("strong", { textContent: user.display_name || user.name }),
                   el("span", { className: "lw-session-role", textContent: ` ${role} · ${sites}` }));
    const out = el("button", { type: "button", id: "signout-btn", textContent: w.signout });
    out.onclick = () => signOut();
    const box = el("span", { className: "lw-session-in" }, who);
    if (user.kind === "user") {
      const change = el("button", { type: "button", id: "password-btn", className: "lw-session-link",
                                    textContent: w.password_btn });
      change.onclick = () => { changingPassword = !changingPassword; passwordNote = ""; draw(); };
      box.append(change);
    }
    box.append(out);
    if (changingPassword && user.kind === "user") box.append(passwordForm(w));
    else if (passwordNote) box.append(el("span", { id: "pw-msg", role: "status", textContent: passwordNote }));
    return box;
  }

  function passwordForm(w) {  // one's own password: POST /api/v1/session/password (other sessions end)
    const field = (id, label, complete) => el("input", { type: "password", id, placeholder: label, ariaLabel: label,
                                                         autocomplete: complete });
    const msg = el("span", { id: "pw-msg", className: "lw-session-error", role: "alert" });
    const save = el("button", { type: "submit", id: "pw-save", textContent: w.save });
    const form = el("form", { className: "lw-session-form lw-session-password" },
                    field("pw-current", w.current, "current-password"), field("pw-new", w.fresh, "new-password"),
                    field("pw-again", w.again, "new-password"), save, msg);
    form.onsubmit = async event => {
      event.preventDefault();
      const value = id => form.querySelector("#" + id).value;
      if (value("pw-new") !== value("pw-again")) { msg.textContent = w.differ; return; }
      save.disabled = true;
      try {
        await request("/api/v1/session/password", { method: "POST", json: { current: value("pw-current"),
                                                                            new: value("pw-new") } });
        changingPassword = false; passwordNote = w.changed;
        draw();
      } catch (err) {
        msg.textContent = err.message;
        save.disabled = false;
      }
    };
    return form;
  }

  function draw() {
    const w = words();
    mounts.forEach(element => {
      element.replaceChildren(user ? signedIn(w) : form(w));
      element.dataset.signedIn = user ? "true" : "false";
    });
  }

  function style() {
    if (document.getElementById("lw-session-style")) return;
    document.head.append(el("style", { id: "lw-session-style", textContent: `
      .lw-session-form, .lw-session-in { display:flex; flex-wrap:wrap; gap:.4rem; align-items:center; }
      .lw-session-form input { width:8.5rem; min-width:0; font-size:inherit; }
      .lw-session-link { background:none; border:none; color:#8fc7ff; text-decoration:underline; cursor:pointer; }
      .lw-session-error { color:#ff6b6b; font-weight:600; flex-basis:100%; }
      .lw-session-error:empty { display:none; }
      .lw-session-role { opacity:.85; }
      .lw-session-password { flex-basis:100%; }
      @media (max-width: 480px) { .lw-session-form input { width:calc(50% - .4rem); } }` }));
  }

  function mount(element) {
    if (!element) return;
    style();
    if (!mounts.includes(element)) mounts.push(element);
    draw();
  }

  if (window.LW && window.LW.lang) window.LW.lang.onChange(draw);

  async function restore() {  // a service token from this tab, else the session cookie if it is still good
    if (token) return signIn(token).catch(() => null);
    try {
      user = await request("/api/v1/session", { quiet: true });
      await learnSites();
    } catch (err) {
      user = null;
      if (err.ended) notice = "ended";  // the cookie of an ended session (the answer also cleared it)
    }
    changed();
    return user;
  }

  const ready = restore();
  window.LW = window.LW || {};
  window.LW.session = {
    user: () => user,
    may: role => !!user && ROLE_RANK[user.role] >= ROLE_RANK[role],
    covers: siteId => !!user && (!user.sites || user.sites.length === 0 || user.sites.includes(siteId)),
    fetch: request,
    authHeader,
    ready,
    onChange: cb => listeners.push(cb),
    mount,
    login,
    signIn,
    signOut,
    check,
  };
})();
