// One site's live stream for the site view and the alarm detail: window.LW.live (load after session.js).
//
// Interface:
//   LW.live.open(siteId, {onEvent(name, data), onState(state)}) -> {close()}
//     reads GET /api/v1/sites/{siteId}/live (Server-Sent Events: hello, readings, alert, site) with the
//     signed-in credentials — fetch() and a stream reader, not EventSource, because EventSource cannot
//     send the Authorization header a site-scoped sign-in needs;
//     onState("live" | "lost" | "denied", detail) whenever the link changes: "lost" when the server closes, errors,
//     or sends nothing (not even its 5 s keep-alive) for SILENT_MS; it then reconnects every 2 s. "denied" (after
//     "lost") when the server refuses the stream (401/403/404): no retry until the page opens a new one.
//     Events carry ids: a reconnect sends Last-Event-ID and misses nothing; on a "reset" event (what was missed is
//     no longer kept) it calls handlers.onReset(data), or reloads the page without one.
//   LW.live.SILENT_MS -> how long a silent stream counts as alive
(function () {
  "use strict";
  const SILENT_MS = 12000;
  const RETRY_MS = 2000;

  function parse(block, onEvent, onId) {
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("id: ")) onId(line.slice(4));
      else if (line.startsWith("event: ")) name = line.slice(7);
      else if (line.startsWith("data: ")) data.push(line.slice(6));
    }
    if (!data.length) return;  // a comment (keep-alive) or a bare retry line
    onEvent(name, JSON.parse(data.join("\n")));
  }

  function open(siteId, handlers) {
    // lastId: the id of the last event received; a reconnect sends it (Last-Event-ID) and the server first
    // replays what was missed. A "reset" event says that is no longer possible: the page reloads its state.
    let closed = false, controller = null, lastByte = Date.now(), state = null, watchdog = null, lastId = null;
    const setState = (next, detail) => {
      if (next === state && next === "live") return;
      state = next;
      handlers.onState && handlers.onState(next, detail || "");
    };

    async function connect() {
      controller = new AbortController();
      const path = `/api/v1/sites/${encodeURIComponent(siteId)}/live`;
      const resume = lastId === null ? {} : { "Last-Event-ID": lastId };
      const response = await fetch(path, { headers: { ...window.LW.session.authHeader(), Accept: "text/event-stream", ...resume },
                                           signal: controller.signal, cache: "no-store" });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        throw Object.assign(new Error(body.detail || response.statusText), { status: response.status });
      }
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) throw new Error("stream closed by the server");
        lastByte = Date.now();
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          parse(block, (name, data) => {
            if (name === "hello") setState("live");
            if (name === "reset") { if (handlers.onReset) handlers.onReset(data); else location.reload(); return; }
            handlers.onEvent(name, data);
          }, id => { lastId = id; });
        }
      }
    }

    async function loop() {
      while (!closed) {
        try { await connect(); }
        catch (err) {
          if (closed) break;
          setState("lost", err.message);
          // not allowed (signed out, another plant's site) or no such site: asking again will not help;
          // the page opens a new stream when the sign-in changes
          if ([401, 403, 404].includes(err.status)) { setState("denied", err.message); break; }
        }
        if (controller) controller.abort();
        if (!closed) await new Promise(resolve => setTimeout(resolve, RETRY_MS));
      }
    }

    // A stream that says nothing for SILENT_MS is dead even if the socket looks open (server frozen, cable cut).
    watchdog = setInterval(() => {
      if (!closed && state === "live" && Date.now() - lastByte > SILENT_MS) {
        setState("lost", "no data for " + Math.round((Date.now() - lastByte) / 1000) + " s");
        if (controller) controller.abort();
      }
    }, 1000);
    loop();
    return { close() { closed = true; clearInterval(watchdog); if (controller) controller.abort(); } };
  }

  window.LW = window.LW || {};
  window.LW.live = { open, SILENT_MS };
})();
