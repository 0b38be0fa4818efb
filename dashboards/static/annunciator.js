// Annunciation of unacknowledged alarms on the duty screen: window.LW.annunciator (load after lang.js).
//   LW.annunciator.update(alerts)  -> after every refresh: sounds the highest priority among unacknowledged,
//                                     unsilenced alarms (the page's <audio id="sound-{tier}"> elements, looped),
//                                     notifies new ones (browser Notification, where permitted)
//   LW.annunciator.silence()       -> silences what sounds now; an alarm that is new, escalates or comes back sounds again
//   LW.annunciator.setMuted(bool) / muted() -> the per-browser mute (localStorage): no sound at all, flashing stays
//   LW.annunciator.seen(alert)     -> the operator has seen it (hovered, clicked, selected): it stops flashing
//   LW.annunciator.flashing(alert) -> whether it is new since the page opened and not yet seen
//   LW.annunciator.status()        -> {sounding: tier | null, blocked: bool, muted: bool}
//   LW.annunciator.enable()        -> retry after the browser refused to play without a user gesture
//   LW.annunciator.onChange(cb)    -> cb(status) whenever the status changes
// One alarm episode is announced once per activation and priority: its key is id, activation time and tier.
(function () {
  "use strict";
  const RANK = { red: 4, orange: 3, yellow: 2, blue: 1 };
  const MUTE_KEY = "liaowang-mute";
  const SILENCED_KEY = "liaowang-silenced";  // per tab: a reload does not sound again what was silenced
  const listeners = [];
  const silenced = new Set(JSON.parse(sessionStorage.getItem(SILENCED_KEY) || "[]"));
  const seenKeys = new Set();
  const notified = new Set();
  let first = true;
  let sounding = null;
  let blocked = false;
  let muted = localStorage.getItem(MUTE_KEY) === "1";
  let unacked = [];

  const key = a => `${a.id}|${a.activated_at || a.raised_at}|${a.tier}`;
  const isUnacked = a => a.state === "active" && !a.suppressed;
  const audio = tier => document.getElementById("sound-" + tier);

  function status() { return { sounding, blocked, muted }; }
  function changed() { listeners.forEach(cb => { try { cb(status()); } catch (err) { console.error(err); } }); }

  function play(tier) {
    for (const t of Object.keys(RANK)) {
      const el = audio(t);
      if (el && t !== tier && !el.paused) { el.pause(); el.currentTime = 0; }
    }
    const before = sounding;
    sounding = tier;
    if (tier && audio(tier) && audio(tier).paused) {
      audio(tier).play().then(() => { if (blocked) { blocked = false; changed(); } })
        .catch(err => {  // autoplay refused until a user gesture: say so on screen, never silently
          console.warn("alarm sound refused:", err.name);
          blocked = true;
          changed();
        });
    }
    if (before !== tier) changed();
  }

  function decide() {
    const loud = muted ? [] : unacked.filter(a => !silenced.has(key(a)));
    const top = loud.reduce((best, a) => (!best || RANK[a.tier] > RANK[best] ? a.tier : best), null);
    play(top);
  }

  function notify(alerts) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    const t = window.LW.mapText.t();
    for (const a of alerts) {
      try {
        new Notification(`${t.tier[a.tier]} · ${a.displayTitle || a.site_id}`, { body: a.displayText || a.message, tag: a.id });
      } catch (err) { console.warn("notification refused:", err.message); }
    }
  }

  function update(alerts) {
    unacked = alerts.filter(isUnacked);
    const fresh = unacked.filter(a => !notified.has(key(a)));
    fresh.forEach(a => notified.add(key(a)));
    if (first) {  // what was there when the page opened still sounds (it is unacknowledged) but does not flash
      unacked.forEach(a => seenKeys.add(key(a)));
      first = false;
    } else if (fresh.length) {
      notify(fresh);
    }
    decide();
  }

  function silence() {
    unacked.forEach(a => silenced.add(key(a)));
    sessionStorage.setItem(SILENCED_KEY, JSON.stringify([...silenced].slice(-2000)));
    decide();
  }

  function setMuted(value) {
    muted = !!value;
    localStorage.setItem(MUTE_KEY, muted ? "1" : "0");
    decide();
    changed();
  }

  function enable() {
    blocked = false;
    const tier = sounding;
    sounding = null;
    play(tier);
    changed();
  }

  window.LW = window.LW || {};
  window.LW.annunciator = {
    update, silence, setMuted, enable, status,
    muted: () => muted,
    seen: a => { seenKeys.add(key(a)); },
    flashing: a => isUnacked(a) && !seenKeys.has(key(a)),
    onChange: cb => listeners.push(cb),
  };
})();
