// "MIT FACEBOOK EINLOGGEN": Embedded Signup through the Facebook JS SDK. The popup's code (the
// FB.login callback) and its WA_EMBEDDED_SIGNUP session info (a message from the popup's
// origin, accepted only from META_SIGNUP_ORIGINS) arrive in either order; the page collects
// both and hands them to the server at once, because the code lives 30 seconds. The server
// binds the attempt to this session and checks everything the browser says against the
// exchanged token.
"use strict";

(function () {
  let ready = null;
  window.fbAsyncInit = function () {
    const root = document.getElementById("signup");
    if (!root || !window.FB) return;
    FB.init({ appId: root.dataset.appId, autoLogAppEvents: true, xfbml: true, version: root.dataset.version });
    if (ready) ready();
  };

  function allowedOrigin(origin, list) {
    let host;
    try { host = new URL(origin).hostname; } catch (_) { return false; }
    return list.some((o) => (o.indexOf("://") >= 0 ? o === origin : host === o || host.endsWith("." + o)));
  }

  function setup() {
    const root = document.getElementById("signup");
    const button = document.getElementById("fb-login");
    const status = document.getElementById("signup-status");
    if (root && button) {
      const origins = (root.dataset.origins || "").split(",").map((s) => s.trim()).filter(Boolean);
      const csrf = root.dataset.csrf;
      let attempt = null, info = null, login = null, sent = false, waitTimer = null, busy = false;
      const say = (key) => { if (status) status.textContent = status.dataset[key] || ""; };

      ready = () => { button.disabled = false; };
      if (window.FB && FB.init) { window.fbAsyncInit(); }

      window.addEventListener("message", (e) => {
        if (!allowedOrigin(e.origin, origins)) return;
        let data;
        try { data = typeof e.data === "string" ? JSON.parse(e.data) : e.data; } catch (_) { return; }
        if (!data || data.type !== "WA_EMBEDDED_SIGNUP") return;
        info = data;
        maybeSend();
      });

      function send() {
        if (sent) return;
        sent = true;
        if (waitTimer) { clearTimeout(waitTimer); waitTimer = null; }
        say("working");
        const code = login && login.authResponse ? login.authResponse.code : null;
        attempt
          .then((a) => {
            if (!a.ok) throw new Error((a.body.error && a.body.error.message) || "");
            return fetch("/api-settings/whatsapp/signup/" + encodeURIComponent(a.body.nonce), {
              method: "POST",
              credentials: "same-origin",
              headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf },
              body: JSON.stringify({ code: code, message: info }),
            });
          })
          .then((r) => r.json())
          .then((j) => { window.location.href = (j && j.next) || "/api-settings/whatsapp"; })
          .catch((err) => {
            busy = false;
            button.disabled = false;
            if (status) status.textContent = (err && err.message) || status.dataset.failed || "";
          });
      }

      function maybeSend() {
        if (sent || !login) return;
        // The session info usually comes first; give it a moment when the code was faster.
        if (!info && !waitTimer) waitTimer = setTimeout(send, 1500);
        if (info) send();
      }

      button.addEventListener("click", () => {
        if (busy || !window.FB) return;
        busy = true;
        button.disabled = true;
        info = null; login = null; sent = false;
        say("waiting");
        attempt = fetch("/api-settings/whatsapp/signup", {
          method: "POST",
          credentials: "same-origin",
          headers: { Accept: "application/json", "X-CSRF-Token": csrf },
        }).then((r) => r.json().then((body) => ({ ok: r.ok, body: body })));
        FB.login((response) => { login = response || { authResponse: null }; maybeSend(); }, {
          config_id: root.dataset.configId,
          response_type: "code",
          override_default_response_type: true,
          extras: {},
        });
      });
    }

    // The checklist follows Meta: live events from app.js, and a look every few seconds while
    // something is pending (a change may fall between rendering and the stream connecting).
    const list = document.getElementById("checklist");
    if (!list) return;
    function refresh() {
      fetch("/api-settings/whatsapp/checklist", { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then((r) => r.json())
        .then((j) => {
          (j.items || []).forEach((i) => {
            const li = document.getElementById("check-" + i.item);
            if (!li) return;
            li.className = "item item-" + i.state;
            li.dataset.state = i.state;
            const s = li.querySelector(".state");
            if (s) s.textContent = i.text;
            const d = li.querySelector(".detail");
            if (d) d.textContent = i.detail || "";
            const w = li.querySelector(".when");
            if (w) {
              w.replaceChildren();
              if (i.at) {
                const t = document.createElement("time");
                t.className = "local";
                t.setAttribute("datetime", i.at);
                t.textContent = i.when;
                w.append(t);
                if (window.wabridgeLocalTimes) window.wabridgeLocalTimes(w);
              }
            }
          });
        })
        .catch(() => {});
    }
    window.addEventListener("wabridge:onboarding", refresh);
    setInterval(() => { if (list.querySelector('[data-state="pending"]')) refresh(); }, 3000);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();
