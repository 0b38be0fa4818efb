// Who is signed in, for every page: window.LW.session (load before the page's own script).
//
// Interface (pages use only this):
//   LW.session.user()            -> {name, role, sites} of the signed-in person or machine, or null
//   LW.session.may(role)         -> whether the signed-in role is `role` or above (viewer < operator < duty_officer < admin)
//   LW.session.covers(siteId)    -> whether the sign-in's site scope covers the site (no scope: every site)
//   LW.session.fetch(path, opts) -> fetch() with the credentials; a JSON body object in opts.json is sent as JSON;
//                                   resolves to the parsed JSON body, rejects with Error(detail) on a non-2xx answer
//   LW.session.authHeader()      -> {Authorization: ...} or {} (for EventSource-less callers and downloads)
//   LW.session.ready             -> a Promise resolved once the stored sign-in has been checked
//   LW.session.onChange(cb)      -> cb(user) after every sign-in and sign-out
//   LW.session.mount(element)    -> draws the sign-in / signed-in widget into element
//   LW.session.signOut()
(function () {
  "use strict";
  const KEY = "liaowang-token";
  const ROLE_RANK = { viewer: 0, operator: 1, duty_officer: 2, admin: 3 };
  const listeners = [];
  let token = sessionStorage.getItem(KEY) || "";
  let user = null;

  function authHeader() { return token ? { Authorization: "Bearer " + token } : {}; }

  async function request(path, opts = {}) {
    const headers = { ...authHeader(), ...(opts.headers || {}) };
    let body = opts.body;
    if (opts.json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(opts.json); }
    const response = await fetch(path, { ...opts, headers, body });
    const parsed = await response.json().catch(() => ({}));
    if (!response.ok) {
      const detail = typeof parsed.detail === "string" ? parsed.detail : JSON.stringify(parsed.detail || response.statusText);
      const error = new Error(detail);
      error.status = response.status;
      throw error;
    }
    return parsed;
  }

  function changed() { listeners.forEach(cb => { try { cb(user); } catch (err) { console.error(err); } }); }

  async function useToken(value) {
    token = value;
    user = null;
    if (!token) { sessionStorage.removeItem(KEY); changed(); return null; }
    try {
      user = await request("/api/v1/whoami");
      sessionStorage.setItem(KEY, token);
    } catch (err) {
      token = ""; sessionStorage.removeItem(KEY);
      changed();
      throw err;
    }
    changed();
    return user;
  }

  function mount(element) {
    element.innerHTML = "";
    const input = Object.assign(document.createElement("input"), { type: "password", id: "token", autocomplete: "off",
                                                                     placeholder: "令牌 (token)" });
    const button = Object.assign(document.createElement("button"), { id: "signin-btn", textContent: "登录" });
    const who = Object.assign(document.createElement("span"), { id: "whoami" });
    button.onclick = () => useToken(input.value.trim()).catch(err => window.alert("令牌无效: " + err.message));
    element.append(input, button, who);
    const draw = u => { who.textContent = u ? u.name : ""; };
    listeners.push(draw);
    draw(user);
  }

  const ready = token ? useToken(token).catch(() => null) : Promise.resolve(null);
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
    signIn: useToken,
    signOut: () => useToken(""),
  };
})();
