// The citizen bot's Mini App. Telegram passes the signed initData in the URL's fragment
// (#tgWebAppData=...), and through window.Telegram.WebApp when its script is loaded; the
// page sends it as it came and shows what the server answers: nothing here is trusted.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const tg = window.Telegram && window.Telegram.WebApp;
  let offset = 0, tz = undefined, lang = "en", clock = null;

  function initData() {
    if (tg && tg.initData) return tg.initData;
    return new URLSearchParams(location.hash.slice(1)).get("tgWebAppData") || "";
  }

  function timeText(date) {
    try {
      return date.toLocaleTimeString(lang, {timeZone: tz, hour12: false});
    } catch (e) {
      return date.toLocaleTimeString();
    }
  }

  function tick() { $("clock").textContent = timeText(new Date(Date.now() + offset)); }

  function show(screen, answer) {
    document.body.dataset.screen = screen;
    document.body.dataset.colour = answer.colour || "";
    const labels = answer.labels || {};
    document.documentElement.lang = answer.lang || lang;
    $("title").textContent = labels.title || "";
    $("headline").textContent = answer.headline || "";
    $("venue").textContent = answer.venue || "";
    $("name").textContent = answer.name || "";
    $("iin").textContent = answer.iin || "";
    $("message").textContent = answer.message || "";
    $("hint").textContent = labels.live_hint && answer.colour ? labels.live_hint : "";
    $("since").textContent = answer.at && labels.now ? `${timeText(new Date(answer.at))}` : "";
    const action = $("action");
    action.hidden = !answer.bot_link;
    if (answer.bot_link) { action.href = answer.bot_link; action.textContent = answer.action; }
    if (answer.colour) {
      if (!clock) clock = setInterval(tick, 250);
      tick();
    }
    if (tg && tg.ready) { tg.ready(); if (tg.expand) tg.expand(); }
  }

  async function open() {
    const body = JSON.stringify({init_data: initData()});
    for (let attempt = 0; attempt < 5; attempt++) {
      let response;
      try {
        response = await fetch(new URL("api/open", location.href), {
          method: "POST", headers: {"Content-Type": "application/json"}, body,
          credentials: "omit", cache: "no-store"});
      } catch (e) {
        await new Promise((ok) => setTimeout(ok, 1000 * (attempt + 1)));
        continue;  // the same initData again: the server stores a scan once
      }
      const answer = await response.json().catch(() => ({}));
      if (response.status === 503) {
        await new Promise((ok) => setTimeout(ok, 1000 * (attempt + 1)));
        continue;
      }
      if (!response.ok) {
        show("error", {message: answer.message || `HTTP ${response.status}`});
        return;
      }
      lang = answer.lang || lang;
      tz = answer.tz;
      offset = Date.parse(answer.server_time) - Date.now();
      show(answer.screen, answer);
      return;
    }
    show("error", {message: "⚠️"});
  }

  open();
  // the same page opened again with new initData (a second scan) only changes the fragment
  window.addEventListener("hashchange", open);
})();
