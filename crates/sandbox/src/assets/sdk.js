/* wabridge sandbox: a stand-in for the Facebook JS SDK (connect.facebook.net/{{LOCALE}}/sdk.js).
   Supports what Embedded Signup needs: FB.init, FB.login with config_id and response_type 'code'. */
(function () {
  "use strict";
  var BASE = "{{BASE}}";
  var LOCALE = "{{LOCALE}}";
  var PREFIX = "fbsandbox:login:";
  var state = { appId: null, version: "v26.0", inited: false };

  function login(callback, options) {
    options = options || {};
    if (!state.inited) {
      console.error("FB.login() called before FB.init().");
      return;
    }
    var params = new URLSearchParams({
      app_id: state.appId,
      config_id: options.config_id || "",
      response_type: options.response_type || "token",
      override_default_response_type: String(!!options.override_default_response_type),
      extras: JSON.stringify(options.extras || {}),
      locale: LOCALE,
      version: state.version,
      display: "popup",
      origin: window.location.origin
    });
    var popup = window.open(BASE + "/dialog/oauth?" + params.toString(), "fb_embedded_signup",
      "width=640,height=760,scrollbars=yes,resizable=yes");
    var done = false;
    var timer = null;
    function finish(response) {
      if (done) { return; }
      done = true;
      window.removeEventListener("message", onMessage);
      if (timer) { clearInterval(timer); }
      try { callback(response); } catch (e) { setTimeout(function () { throw e; }); }
    }
    function onMessage(event) {
      if (event.origin !== BASE || typeof event.data !== "string" || event.data.indexOf(PREFIX) !== 0) { return; }
      try { finish(JSON.parse(event.data.slice(PREFIX.length))); } catch (e) { /* not ours */ }
    }
    window.addEventListener("message", onMessage);
    if (!popup) {
      finish({ authResponse: null, status: "unknown" });
      return;
    }
    // A popup closed without finishing answers like Facebook's SDK: no authResponse.
    timer = setInterval(function () {
      if (popup.closed) {
        clearInterval(timer);
        timer = null;
        setTimeout(function () { finish({ authResponse: null, status: "unknown" }); }, 400);
      }
    }, 200);
  }

  var FB = {
    init: function (options) {
      options = options || {};
      state.appId = String(options.appId || "");
      state.version = options.version || state.version;
      state.inited = true;
    },
    login: login,
    getLoginStatus: function (cb) { if (cb) { cb({ status: "unknown", authResponse: null }); } },
    getAuthResponse: function () { return null; },
    logout: function (cb) { if (cb) { cb({ status: "unknown", authResponse: null }); } },
    api: function () {
      var cb = arguments[arguments.length - 1];
      if (typeof cb === "function") { cb({ error: { message: "FB.api is not available in the sandbox SDK", code: 3 } }); }
    },
    AppEvents: { logPageView: function () {}, logEvent: function () {} },
    XFBML: { parse: function () {} },
    Event: { subscribe: function () {}, unsubscribe: function () {} },
    __sandbox: { base: BASE }
  };
  window.FB = FB;
  if (typeof window.fbAsyncInit === "function") {
    setTimeout(function () { window.fbAsyncInit(); }, 0);
  }
})();
